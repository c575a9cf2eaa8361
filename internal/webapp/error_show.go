package webapp

// errorView is the model of the generic error page (handleError).
type errorView struct {
	Layout
	Status  int
	Message string
	// SignIn offers the sign-in button (401).
	SignIn bool
}
