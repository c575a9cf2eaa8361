package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// userJSON is a synced user as the API shows it.
type userJSON struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"user_principal_name"`
	DisplayName       string `json:"display_name"`
	GivenName         string `json:"given_name"`
	Surname           string `json:"surname"`
	Mail              string `json:"mail"`
	JobTitle          string `json:"job_title"`
	AccountEnabled    bool   `json:"account_enabled"`
}

// groupJSON is a synced group as the API shows it.
type groupJSON struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	Description string `json:"description"`
}

// idCursor is the position in a directory listing: the last ID shown.
type idCursor struct {
	After string `json:"a"`
}

// listDirectory serves one page of a tenant's directory copy (users or
// groups) in ID order, with an opaque cursor bound to the tenant and kind.
// The tenant is looked up only when the page is empty, so that an unknown
// tenant is 404 rather than an empty list without a query per page.
func listDirectory[T, J any](a *API, c echo.Context, kind string,
	list func(ctx context.Context, tenantID string, p postgres.DirectoryPage) ([]T, bool, error),
	id func(T) string, toJSON func(T) J,
) error {
	if err := onlyParams(c, "limit", "cursor"); err != nil {
		return a.fail(c, err)
	}
	limit, err := limitParam(c, 100, 1000)
	if err != nil {
		return a.fail(c, err)
	}
	ctx, tid := c.Request().Context(), c.Param("id")
	listing := kind + "\x00" + tid
	p := postgres.DirectoryPage{Limit: limit}
	if cur := c.QueryParam("cursor"); cur != "" {
		var ic idCursor
		if err := a.cursors.Decode(listing, cur, &ic); err != nil {
			return a.fail(c, errInvalid("the cursor is not one this API issued for this listing"))
		}
		p.After = ic.After
	}
	items, more, err := list(ctx, tid, p)
	if err != nil {
		return a.fail(c, err)
	}
	if len(items) == 0 {
		if _, err := a.store.TenantGet(ctx, tid); err != nil {
			return a.fail(c, err)
		}
	}
	out := page[J]{Items: make([]J, 0, len(items))}
	for _, it := range items {
		out.Items = append(out.Items, toJSON(it))
	}
	if more {
		s := a.cursors.Encode(listing, idCursor{After: id(items[len(items)-1])})
		out.NextCursor = &s
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) userList(c echo.Context) error {
	return listDirectory(a, c, "users", a.store.DirectoryUserList,
		func(u domain.DirectoryUser) string { return u.ID }, toUserJSON)
}

func (a *API) groupList(c echo.Context) error {
	return listDirectory(a, c, "groups", a.store.DirectoryGroupList,
		func(g domain.Group) string { return g.ID },
		func(g domain.Group) groupJSON {
			return groupJSON{ID: g.ID, DisplayName: g.DisplayName, Description: g.Description}
		})
}

func toUserJSON(u domain.DirectoryUser) userJSON {
	return userJSON{ID: u.ID, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName,
		GivenName: u.GivenName, Surname: u.Surname, Mail: u.Mail, JobTitle: u.JobTitle, AccountEnabled: u.AccountEnabled}
}
