package apitest

import (
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// seen records every (operation id, status) exchanged through a validating
// client in this test binary. It is process-wide so that a package's tests
// can be checked together (see Missing); only test binaries import apitest.
var seen = struct {
	sync.Mutex
	m map[string]map[int]bool
}{m: map[string]map[int]bool{}}

func record(operationID string, status int) {
	seen.Lock()
	defer seen.Unlock()
	if seen.m[operationID] == nil {
		seen.m[operationID] = map[int]bool{}
	}
	seen.m[operationID][status] = true
}

// Exercised reports whether an exchange of operation operationID answered
// with status went through a validating client in this test binary.
func Exercised(operationID string, status int) bool {
	seen.Lock()
	defer seen.Unlock()
	return seen.m[operationID][status]
}

// Missing lists, counted from doc, every operation and documented status no
// exchange through a validating client has produced in this test binary
// ("getGroup 404"), except those in exempt (same form, mapped to the reason
// they cannot be produced in a test). A "default" response counts as
// documented nothing. It also lists exemptions the contract does not
// document or that were exercised after all, so the list cannot go stale.
func Missing(doc *openapi3.T, exempt map[string]string) []string {
	var missing []string
	documented := map[string]bool{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for code := range op.Responses.Map() {
				status, err := strconv.Atoi(code)
				if err != nil {
					continue // "default", "4XX": not a status of its own
				}
				name := fmt.Sprintf("%s %d", op.OperationID, status)
				documented[name] = true
				_, ok := exempt[name]
				switch {
				case Exercised(op.OperationID, status) && ok:
					missing = append(missing, name+" is exempt but was exercised: drop the exemption")
				case !Exercised(op.OperationID, status) && !ok:
					missing = append(missing, name)
				}
			}
		}
	}
	for name := range exempt {
		if !documented[name] {
			missing = append(missing, name+" is exempt but openapi.yaml does not document it")
		}
	}
	sort.Strings(missing)
	return missing
}
