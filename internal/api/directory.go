package api

import (
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

// directoryPage reads limit and cursor and checks the tenant exists, so an
// unknown tenant is 404 rather than an empty list.
func (a *API) directoryPage(c echo.Context, listing string) (postgres.DirectoryPage, error) {
	if err := onlyParams(c, "limit", "cursor"); err != nil {
		return postgres.DirectoryPage{}, err
	}
	limit, err := limitParam(c, 100, 1000)
	if err != nil {
		return postgres.DirectoryPage{}, err
	}
	p := postgres.DirectoryPage{Limit: limit}
	if cur := c.QueryParam("cursor"); cur != "" {
		var ic idCursor
		if err := a.cursors.decode(listing, cur, &ic); err != nil {
			return p, err
		}
		p.After = ic.After
	}
	if _, err := a.store.TenantGet(c.Request().Context(), c.Param("id")); err != nil {
		return p, err
	}
	return p, nil
}

func (a *API) userList(c echo.Context) error {
	tid := c.Param("id")
	listing := "users\x00" + tid
	p, err := a.directoryPage(c, listing)
	if err != nil {
		return a.fail(c, err)
	}
	users, more, err := a.store.DirectoryUserList(c.Request().Context(), tid, p)
	if err != nil {
		return a.fail(c, err)
	}
	out := page[userJSON]{Items: make([]userJSON, 0, len(users))}
	for _, u := range users {
		out.Items = append(out.Items, toUserJSON(u))
	}
	if more {
		s := a.cursors.encode(listing, idCursor{After: users[len(users)-1].ID})
		out.NextCursor = &s
	}
	return c.JSON(http.StatusOK, out)
}

func toUserJSON(u domain.DirectoryUser) userJSON {
	return userJSON{ID: u.ID, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName,
		GivenName: u.GivenName, Surname: u.Surname, Mail: u.Mail, JobTitle: u.JobTitle, AccountEnabled: u.AccountEnabled}
}

func (a *API) groupList(c echo.Context) error {
	tid := c.Param("id")
	listing := "groups\x00" + tid
	p, err := a.directoryPage(c, listing)
	if err != nil {
		return a.fail(c, err)
	}
	groups, more, err := a.store.DirectoryGroupList(c.Request().Context(), tid, p)
	if err != nil {
		return a.fail(c, err)
	}
	out := page[groupJSON]{Items: make([]groupJSON, 0, len(groups))}
	for _, g := range groups {
		out.Items = append(out.Items, groupJSON{ID: g.ID, DisplayName: g.DisplayName, Description: g.Description})
	}
	if more {
		s := a.cursors.encode(listing, idCursor{After: groups[len(groups)-1].ID})
		out.NextCursor = &s
	}
	return c.JSON(http.StatusOK, out)
}
