package entraemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ControlHandler serves the JSON control API (README.md, "Control API"). It
// accepts paths with or without the /_emu prefix. It has the same powers as
// the in-process methods and no authentication: Start mounts it only when
// Config.EnableControl is set.
func (e *Emulator) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /seed", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, e.Seed()) })
	mux.HandleFunc("GET /tenants", e.ctlTenants)
	mux.HandleFunc("GET /counters", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, e.Counters("")) })
	mux.HandleFunc("PUT /faults", e.ctlFaults)
	mux.HandleFunc("PUT /propagation-delay", e.ctlPropagation)
	mux.HandleFunc("POST /propagation-delay", e.ctlPropagation)
	mux.HandleFunc("DELETE /tenants/{tid}", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.DeleteTenant(r.PathValue("tid")), nil)
	})
	mux.HandleFunc("GET /tenants/{tid}/directory", func(w http.ResponseWriter, r *http.Request) {
		if !e.exists(w, r.PathValue("tid")) {
			return
		}
		writeJSON(w, 200, e.Directory(r.PathValue("tid")))
	})
	mux.HandleFunc("GET /tenants/{tid}/counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, e.Counters(r.PathValue("tid")))
	})
	mux.HandleFunc("PUT /tenants/{tid}/faults", e.ctlFaults)
	mux.HandleFunc("POST /tenants/{tid}/consent", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Roles []string `json:"roles"`
		}
		if !decodeBody(w, r, &body, true) {
			return
		}
		ctlResult(w, e.Grant(r.PathValue("tid"), body.Roles...), nil)
	})
	mux.HandleFunc("DELETE /tenants/{tid}/consent", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.RevokeConsent(r.PathValue("tid")), nil)
	})
	mux.HandleFunc("POST /tenants/{tid}/consent/remove-roles", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.RemoveRoles(r.PathValue("tid")), nil)
	})
	mux.HandleFunc("POST /tenants/{tid}/consent/disable", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.DisableServicePrincipal(r.PathValue("tid")), nil)
	})
	mux.HandleFunc("POST /tenants/{tid}/delta/expire", func(w http.ResponseWriter, r *http.Request) {
		if e.exists(w, r.PathValue("tid")) {
			e.ExpireDeltaTokens(r.PathValue("tid"))
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("POST /tenants/{tid}/delta/reset", func(w http.ResponseWriter, r *http.Request) {
		if e.exists(w, r.PathValue("tid")) {
			e.ForceReset(r.PathValue("tid"))
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("POST /tenants/{tid}/users", func(w http.ResponseWriter, r *http.Request) {
		var u User
		if !decodeBody(w, r, &u, false) {
			return
		}
		out, err := e.CreateUser(r.PathValue("tid"), u)
		ctlResult(w, err, out)
	})
	mux.HandleFunc("PATCH /tenants/{tid}/users/{uid}", func(w http.ResponseWriter, r *http.Request) {
		u, err := e.getUser(r.PathValue("tid"), r.PathValue("uid"))
		if err != nil {
			ctlResult(w, err, nil)
			return
		}
		p := (*plainUser)(&u)
		if !decodeBody(w, r, p, false) {
			return
		}
		u.ID = r.PathValue("uid")
		ctlResult(w, e.UpdateUser(r.PathValue("tid"), u), nil)
	})
	mux.HandleFunc("DELETE /tenants/{tid}/users/{uid}", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.DeleteUser(r.PathValue("tid"), r.PathValue("uid"), r.URL.Query().Get("hard") == "true"), nil)
	})
	mux.HandleFunc("POST /tenants/{tid}/users/{uid}/restore", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.RestoreUser(r.PathValue("tid"), r.PathValue("uid")), nil)
	})
	mux.HandleFunc("POST /tenants/{tid}/groups", func(w http.ResponseWriter, r *http.Request) {
		var g Group
		if !decodeBody(w, r, &g, false) {
			return
		}
		out, err := e.CreateGroup(r.PathValue("tid"), g)
		ctlResult(w, err, out)
	})
	mux.HandleFunc("PATCH /tenants/{tid}/groups/{gid}", func(w http.ResponseWriter, r *http.Request) {
		var g Group
		if !decodeBody(w, r, &g, false) {
			return
		}
		g.ID = r.PathValue("gid")
		ctlResult(w, e.UpdateGroup(r.PathValue("tid"), g), nil)
	})
	mux.HandleFunc("DELETE /tenants/{tid}/groups/{gid}", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.DeleteGroup(r.PathValue("tid"), r.PathValue("gid"), r.URL.Query().Get("hard") == "true"), nil)
	})
	mux.HandleFunc("PUT /tenants/{tid}/groups/{gid}/members/{uid}", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.AddMember(r.PathValue("tid"), r.PathValue("gid"), r.PathValue("uid")), nil)
	})
	mux.HandleFunc("DELETE /tenants/{tid}/groups/{gid}/members/{uid}", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.RemoveMember(r.PathValue("tid"), r.PathValue("gid"), r.PathValue("uid")), nil)
	})
	mux.HandleFunc("GET /subscriptions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, e.Subscriptions(r.URL.Query().Get("tenant")))
	})
	mux.HandleFunc("DELETE /subscriptions/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, e.DeleteSubscription(r.PathValue("id")), nil)
	})
	mux.HandleFunc("POST /subscriptions/{id}/lifecycle", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			LifecycleEvent string `json:"lifecycleEvent"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		ctlResult(w, e.SendLifecycle(r.PathValue("id"), body.LifecycleEvent), nil)
	})
	mux.HandleFunc("PUT /subscription-quota", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			PerApp *int `json:"per_app"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		if body.PerApp == nil || *body.PerApp < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "per_app: want a number ≥ 0 (0 = 50,000)"})
			return
		}
		e.SetSubscriptionQuota(*body.PerApp)
		w.WriteHeader(http.StatusNoContent)
	})
	return http.StripPrefix(ControlPrefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" {
			r.URL.Path = "/"
		}
		mux.ServeHTTP(w, r)
	}))
}

type plainUser User // decodes without the accountEnabled default (PATCH merge)

func (e *Emulator) getUser(tenantID, userID string) (User, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t, slot, err := e.live(userKind, tenantID, userID)
	if err != nil {
		return User{}, err
	}
	u, _ := t.user(slot)
	return u, nil
}

func (e *Emulator) exists(w http.ResponseWriter, tid string) bool {
	e.mu.RLock()
	t := e.tenant(tid)
	e.mu.RUnlock()
	if t == nil {
		ctlResult(w, fmt.Errorf("tenant %s: %w", tid, ErrNotFound), nil)
		return false
	}
	return true
}

// TenantInfo summarises a tenant for listings (control API GET /tenants).
type TenantInfo struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"displayName"`
	Domains     []string `json:"domains"`
	Users       int      `json:"users"`
	Groups      int      `json:"groups"`
	Consented   bool     `json:"consented"`
	Roles       []string `json:"roles,omitempty"`
}

func (e *Emulator) tenantInfos() []TenantInfo {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]TenantInfo, 0, len(e.tenantOrder))
	for _, id := range e.tenantOrder {
		t := e.tenants[id]
		info := TenantInfo{ID: t.id, DisplayName: t.displayName, Domains: t.domains, Users: t.live, Groups: len(t.groups)}
		if sp := t.sps[e.apps[0].ClientID]; sp != nil {
			info.Consented = true
			info.Roles = sp.roles
		}
		out = append(out, info)
	}
	return out
}

func (e *Emulator) ctlTenants(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, e.tenantInfos())
}

// faultsJSON is Faults with durations as Go duration strings ("2s").
type faultsJSON struct {
	ThrottleRate float64 `json:"throttleRate"`
	RetryAfter   string  `json:"retryAfter"`
	ErrorRate    float64 `json:"errorRate"`
	ErrorStatus  int     `json:"errorStatus"`
	Latency      string  `json:"latency"`
	DropRate     float64 `json:"dropRate"`
	Replay       bool    `json:"replay"`
}

func (e *Emulator) ctlFaults(w http.ResponseWriter, r *http.Request) {
	var fj faultsJSON
	if !decodeBody(w, r, &fj, false) {
		return
	}
	f := Faults{ThrottleRate: fj.ThrottleRate, ErrorRate: fj.ErrorRate, ErrorStatus: fj.ErrorStatus, DropRate: fj.DropRate, Replay: fj.Replay}
	var err error
	if f.RetryAfter, err = parseDur(fj.RetryAfter); err == nil {
		f.Latency, err = parseDur(fj.Latency)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	tid := r.PathValue("tid")
	if tid != "" && !e.exists(w, tid) {
		return
	}
	e.SetFaults(tid, f)
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) ctlPropagation(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Delay string `json:"delay"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	d, err := parseDur(body.Delay)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	e.SetPropagationDelay(d)
	w.WriteHeader(http.StatusNoContent)
}

func parseDur(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	return d, nil
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil && len(strings.TrimSpace(string(b))) == 0 && emptyOK {
		return true
	}
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "decode body: " + err.Error()})
		return false
	}
	return true
}

func ctlResult(w http.ResponseWriter, err error, out any) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrConflict):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case out != nil:
		writeJSON(w, http.StatusCreated, out)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// Tenants lists the tenants with their live user counts and consent state.
func (e *Emulator) Tenants() []TenantInfo { return e.tenantInfos() }
