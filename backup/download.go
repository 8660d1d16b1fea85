// Package backup fetches a hot backup of the store from a running service
// (GET /v1/backup, operators only) and verifies it before it is kept.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/groupgate/groupgate/boltstore"
)

// Download fetches a hot backup from a running service at baseURL with
// an operator key, writes it to out (mode 0600) and verifies it: it must
// open as a store of this version and pass bbolt's integrity check. The file
// appears at out only once verified. It returns the backup's size.
func Download(ctx context.Context, hc *http.Client, baseURL, operatorKey, out string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+"/v1/backup", nil)
	if err != nil {
		return 0, fmt.Errorf("backup request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+operatorKey)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("backup request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("backup refused: HTTP %d", resp.StatusCode)
	}
	partial := out + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", partial, err)
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = Verify(partial)
	}
	if err != nil {
		_ = os.Remove(partial)
		return 0, fmt.Errorf("backup to %s: %w", out, err)
	}
	if err := os.Rename(partial, out); err != nil {
		return 0, fmt.Errorf("backup to %s: %w", out, err)
	}
	return n, nil
}

// Verify checks that the file at path is a store this version can use
// and that bbolt finds it consistent.
func Verify(path string) error {
	st, err := boltstore.Open(path, time.Second)
	if err != nil {
		return err
	}
	return errors.Join(st.Check(), st.Close())
}
