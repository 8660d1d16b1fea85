package techpasssim

import (
	"encoding/json"
	"net/http"

	"github.com/groupgate/groupgate/techpass"
)

// The admin endpoints, under /_sim/. They need no credentials, are not rate
// limited and are not counted: they observe and steer the simulator, they
// are not part of TechPass.

// serveStats is GET /_sim/stats.
func (s *Simulator) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// serveResetStats is POST /_sim/stats/reset.
func (s *Simulator) serveResetStats(w http.ResponseWriter, _ *http.Request) {
	s.ResetStats()
	w.WriteHeader(http.StatusNoContent)
}

// serveGetFaults is GET /_sim/faults.
func (s *Simulator) serveGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.CurrentFaults())
}

// servePutFaults is PUT /_sim/faults: a JSON Faults replaces the faults
// injected; unknown fields and invalid values are refused with 400.
func (s *Simulator) servePutFaults(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	var f Faults
	if err := dec.Decode(&f); err != nil {
		writeMessage(w, http.StatusBadRequest, "invalid faults: "+err.Error())
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// serveGroupsDump is GET /_sim/namespaces/{namespace}/groups: the
// namespace's groups, without counting a request.
func (s *Simulator) serveGroupsDump(w http.ResponseWriter, r *http.Request) {
	groups := s.Groups(r.PathValue("namespace"))
	if groups == nil {
		writeMessage(w, http.StatusNotFound, "namespace not found")
		return
	}
	writeJSON(w, http.StatusOK, techpass.GroupList{Groups: groups})
}

// decodeAdmin decodes a JSON admin request body into v, refusing unknown
// fields, and answers 400 and returns false when it cannot.
func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeMessage(w, http.StatusBadRequest, "invalid body: "+err.Error())
		return false
	}
	return true
}

// directGroupRequest is the body of POST /_sim/namespaces/{namespace}/groups.
type directGroupRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Dynamic     bool   `json:"dynamic"`
	// TechBiz marks the group as managed by TechBiz (SetTechBiz).
	TechBiz bool `json:"techBiz"`
}

// serveCreateGroup is POST /_sim/namespaces/{namespace}/groups with
// {"name","description","dynamic"}: CreateGroupDirect, answered 201 with the
// group.
func (s *Simulator) serveCreateGroup(w http.ResponseWriter, r *http.Request) {
	var req directGroupRequest
	if !decodeAdmin(w, r, &req) {
		return
	}
	g, err := s.CreateGroupDirect(r.PathValue("namespace"), req.Name, req.Description, req.Dynamic)
	if err == nil && req.TechBiz {
		err = s.SetTechBiz(r.PathValue("namespace"), g.Name, true)
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, g)
}

// serveDeleteGroup is DELETE /_sim/namespaces/{namespace}/groups/{name}:
// DeleteGroupDirect, answered 204.
func (s *Simulator) serveDeleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := s.DeleteGroupDirect(r.PathValue("namespace"), r.PathValue("name")); err != nil {
		s.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveMembers is GET /_sim/namespaces/{namespace}/groups/{name}/members:
// {"members":[...]}, every member sorted by e-mail (Members), 404 when the
// namespace or the group does not exist.
func (s *Simulator) serveMembers(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, g, err := s.findGroup(r.PathValue("namespace"), r.PathValue("name"))
	var members []techpass.User
	if err == nil {
		members = s.users.sorted(g.members)
	}
	s.mu.Unlock()
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, techpass.MemberPage{Members: members})
}

// serveAddMember is POST /_sim/namespaces/{namespace}/groups/{name}/members
// with {"userId"}: AddMemberDirect, answered 204.
func (s *Simulator) serveAddMember(w http.ResponseWriter, r *http.Request) {
	var req techpass.AddMemberRequest
	if !decodeAdmin(w, r, &req) {
		return
	}
	if err := s.AddMemberDirect(r.PathValue("namespace"), r.PathValue("name"), req.UserID); err != nil {
		s.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveRemoveMember is DELETE
// /_sim/namespaces/{namespace}/groups/{name}/members/{userId}:
// RemoveMemberDirect, answered 204.
func (s *Simulator) serveRemoveMember(w http.ResponseWriter, r *http.Request) {
	if err := s.RemoveMemberDirect(r.PathValue("namespace"), r.PathValue("name"), r.PathValue("userId")); err != nil {
		s.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// userList is the body of GET /_sim/users.
type userList struct {
	Users []techpass.User `json:"users"`
}

// serveUsers is GET /_sim/users: {"users":[...]}, sorted by e-mail.
func (s *Simulator) serveUsers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, userList{Users: s.Users()})
}

// serveAddUser is POST /_sim/users with {"id","email","displayName"} (id
// optional): AddUser, answered 201 with the stored user.
func (s *Simulator) serveAddUser(w http.ResponseWriter, r *http.Request) {
	var u techpass.User
	if !decodeAdmin(w, r, &u) {
		return
	}
	stored, err := s.AddUser(u)
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, stored)
}
