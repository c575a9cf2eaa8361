package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPIDocument is the OpenAPI 3.1 description of /api/v1; a test checks
// real responses against it.
//
//go:embed openapi.json
var OpenAPIDocument []byte

func openAPIDocument(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/json", OpenAPIDocument)
}
