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
