package entraemu

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Seed is the initial directory: the ISV's app registrations and the tenants
// with their users and groups. A seed file is the JSON form of this struct.
type Seed struct {
	// Apps are the ISV's app registrations; the first is the default app.
	Apps []App `json:"apps"`
	// Tenants are the directories the emulator serves, the ISV's own included.
	Tenants []Tenant `json:"tenants"`
	// DefaultPassword is the password of every user without its own
	// Password; empty means "tenantsync-demo".
	DefaultPassword string `json:"defaultPassword,omitempty"`
	// HomeTenantID is the ISV's tenant: the apps are registered there, so it
	// always has their service principals.
	HomeTenantID string `json:"homeTenantId"`
}

// App is an app registration of the ISV (multi-tenant).
type App struct {
	// ClientID is the application (client) ID, a GUID.
	ClientID string `json:"clientId"`
	// DisplayName is shown on the consent page and in tokens.
	DisplayName string `json:"displayName"`
	// Secrets are the client secrets; an expired one yields AADSTS7000222.
	Secrets []Secret `json:"secrets,omitempty"`
	// CertificatesPEM are PEM certificates whose keys may sign client assertions.
	CertificatesPEM []string `json:"certificatesPem,omitempty"`
	// RedirectURIs must match redirect_uri exactly (protocol §1.1, §4.4).
	RedirectURIs []string `json:"redirectUris,omitempty"`
	// RequiredRoles are the Microsoft Graph application permissions the app
	// requests by value, e.g. "User.Read.All"; admin consent grants these.
	RequiredRoles []string `json:"requiredRoles,omitempty"`
	// AppRoles are the app's own roles by value, e.g. "Operator".
	AppRoles []string `json:"appRoles,omitempty"`
	// FederatedCredentials are trusted external issuers (protocol §2.3).
	FederatedCredentials []FederatedCredential `json:"federatedCredentials,omitempty"`
}

// Secret is a client secret with its expiry (zero = never expires).
type Secret struct {
	// Value is the secret text sent as client_secret.
	Value string `json:"value"`
	// Expires is when the secret stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
}

// FederatedCredential trusts assertions from an external identity provider
// (workload identity federation, protocol §2.3). Matching is case-sensitive.
type FederatedCredential struct {
	// Issuer must equal the assertion's iss.
	Issuer string `json:"issuer"`
	// Subject must equal the assertion's sub.
	Subject string `json:"subject"`
	// Audience must be in the assertion's aud; empty means
	// "api://AzureADTokenExchange".
	Audience string `json:"audience,omitempty"`
	// KeyPEM is the PEM public key or certificate that signs the assertions
	// (RS256, PS256 or ES256).
	KeyPEM string `json:"keyPem"`
}

// Tenant is one Entra ID directory.
type Tenant struct {
	// ID is the tenant GUID.
	ID string `json:"id"`
	// DisplayName is the organization's name.
	DisplayName string `json:"displayName"`
	// Domains are verified domains; the first is the default domain. An
	// initial "<name>.onmicrosoft.com" domain is added when none is listed.
	Domains []string `json:"domains,omitempty"`
	// Users are explicit users (in addition to generated ones).
	Users []User `json:"users,omitempty"`
	// Groups are explicit groups; Members refer to user IDs.
	Groups []Group `json:"groups,omitempty"`
	// Generate adds deterministic generated users and groups.
	Generate *Generate `json:"generate,omitempty"`
	// Consented means the default app's service principal exists at start
	// with the app's RequiredRoles (as if an admin had consented long ago).
	Consented bool `json:"consented,omitempty"`
}

// Generate describes deterministic generated directory content: the same
// Seed (and tenant ID) always yields the same GUIDs, names and memberships.
// Generated objects are computed on the fly, so a tenant of a million users
// costs a few megabytes until its objects change.
type Generate struct {
	// Users is the number of generated users.
	Users int `json:"users"`
	// Groups is the number of generated groups.
	Groups int `json:"groups"`
	// MembersPerGroup is the member count of each generated group (capped at Users).
	MembersPerGroup int `json:"membersPerGroup"`
	// Seed selects the generated GUIDs and names.
	Seed int64 `json:"seed"`
	// AllUsersGroup adds one extra generated group ("All Users") holding
	// every generated user: a large group for members@delta splitting.
	AllUsersGroup bool `json:"allUsersGroup,omitempty"`
}

// User is a directory user.
type User struct {
	// ID is the object ID (GUID); generated when empty.
	ID string `json:"id,omitempty"`
	// UserPrincipalName is the sign-in name, e.g. admin@contoso.example.
	UserPrincipalName string `json:"userPrincipalName"`
	// DisplayName is the full name.
	DisplayName string `json:"displayName,omitempty"`
	// GivenName is the first name.
	GivenName string `json:"givenName,omitempty"`
	// Surname is the last name.
	Surname string `json:"surname,omitempty"`
	// Mail is the SMTP address.
	Mail string `json:"mail,omitempty"`
	// JobTitle is the job title.
	JobTitle string `json:"jobTitle,omitempty"`
	// AccountEnabled false blocks sign-in. In seed files it defaults to true.
	AccountEnabled bool `json:"accountEnabled"`
	// Admin makes the user a Global Administrator (directory role): it may
	// grant admin consent and its ID token carries wids.
	Admin bool `json:"admin,omitempty"`
	// DirectoryRoles are further directory role template IDs held by the
	// user, e.g. PrivilegedRoleAdminRoleTemplateID; they go into wids, and
	// only Global and Privileged Role Administrators may grant Microsoft
	// Graph application permissions (protocol §1.1).
	DirectoryRoles []string `json:"directoryRoles,omitempty"`
	// AppRoles are the default app's roles assigned to the user, e.g. "Operator".
	AppRoles []string `json:"appRoles,omitempty"`
	// Password overrides Seed.DefaultPassword for this user.
	Password string `json:"password,omitempty"`
}

// UnmarshalJSON decodes a user with accountEnabled defaulting to true.
func (u *User) UnmarshalJSON(b []byte) error {
	type plain User
	p := plain{AccountEnabled: true}
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("decode user: %w", err)
	}
	*u = User(p)
	return nil
}

// Group is a directory group whose members are users.
type Group struct {
	// ID is the object ID (GUID); generated when empty.
	ID string `json:"id,omitempty"`
	// DisplayName is the group name.
	DisplayName string `json:"displayName"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// Members are user IDs (sorted in Directory results).
	Members []string `json:"members,omitempty"`
}

// DefaultPasswordValue is the password of seeded users when neither
// User.Password nor Seed.DefaultPassword is set.
const DefaultPasswordValue = "tenantsync-demo"

// Fixed identifiers of DefaultSeed and SmallSeed.
const (
	// DefaultClientID is the client ID of the seeded "tenantsync" app.
	DefaultClientID = "9aeffa6e-8ae6-492f-8c6d-a12d870c10f0"
	// DefaultClientSecret is the seeded app's secret (an emulator value, not a real secret).
	DefaultClientSecret = "emu-secret-tenantsync-0001"
	// HomeTenantID is the ISV's own tenant ("Tenantsync (ISV)").
	HomeTenantID = "cbb6e4d9-98bc-42fb-a36b-c163624f41ee"
	// ContosoTenantID is the ~50-user customer tenant.
	ContosoTenantID = "98c7e7b9-8621-4041-9670-f4938facd9f6"
	// FabrikamTenantID is the ~2,000-user customer tenant (small in SmallSeed).
	FabrikamTenantID = "34982286-5745-4dca-8067-a460ec0f8e3b"
	// NorthwindTenantID is the ~25,000-user customer tenant (DefaultSeed only).
	NorthwindTenantID = "6eed9723-cdfd-46ac-8226-b0aae701ca88"
	// LitwareTenantID is a small customer tenant without admin consent.
	LitwareTenantID = "c432b0d6-596f-4ed2-bdae-e225b4d2211a"
)

// Graph application permissions tenantsync requires (protocol §3, §5).
var defaultRequiredRoles = []string{"User.Read.All", "GroupMember.Read.All", "Organization.Read.All"}

func defaultApp() App {
	return App{
		ClientID:    DefaultClientID,
		DisplayName: "tenantsync",
		Secrets:     []Secret{{Value: DefaultClientSecret}},
		RedirectURIs: []string{
			"http://localhost:8080/auth/callback", "http://localhost:8080/connect/callback",
			"http://127.0.0.1:8080/auth/callback", "http://127.0.0.1:8080/connect/callback",
		},
		RequiredRoles: append([]string(nil), defaultRequiredRoles...),
		AppRoles:      []string{"Operator"},
	}
}

// customerTenant builds a customer tenant with an admin, a non-admin and
// generated users so that the total is users.
func customerTenant(id, name, domain string, users, groups, perGroup int, seed int64, allGroup, consented bool, ids [2]string) Tenant {
	t := Tenant{
		ID: id, DisplayName: name,
		Domains: []string{domain + ".example", domain + ".onmicrosoft.com"},
		Users: []User{
			{ID: ids[0], UserPrincipalName: "admin@" + domain + ".example", DisplayName: name + " Admin", GivenName: name, Surname: "Admin",
				Mail: "admin@" + domain + ".example", JobTitle: "IT Administrator", AccountEnabled: true, Admin: true},
			{ID: ids[1], UserPrincipalName: "user@" + domain + ".example", DisplayName: name + " User", GivenName: name, Surname: "User",
				Mail: "user@" + domain + ".example", JobTitle: "Analyst", AccountEnabled: true},
		},
		Consented: consented,
	}
	if users > 2 {
		t.Generate = &Generate{Users: users - 2, Groups: groups, MembersPerGroup: perGroup, Seed: seed, AllUsersGroup: allGroup}
	}
	return t
}

func homeTenant() Tenant {
	return Tenant{
		ID: HomeTenantID, DisplayName: "Tenantsync (ISV)",
		Domains: []string{"tenantsync.example", "tenantsync.onmicrosoft.com"},
		Users: []User{
			{ID: "6cc63430-b0b4-4cd4-9b08-231ed0ac10a7", UserPrincipalName: "operator@tenantsync.example", DisplayName: "Olivia Operator",
				GivenName: "Olivia", Surname: "Operator", Mail: "operator@tenantsync.example", JobTitle: "Support Engineer",
				AccountEnabled: true, AppRoles: []string{"Operator"}},
			{ID: "bd33f253-0600-49c1-89b6-1c1b11635c43", UserPrincipalName: "admin@tenantsync.example", DisplayName: "Isaac ISV Admin",
				GivenName: "Isaac", Surname: "Admin", Mail: "admin@tenantsync.example", AccountEnabled: true, Admin: true},
			{ID: "425b1bc4-0b32-469d-b9a4-d5f93b5dfac2", UserPrincipalName: "dev@tenantsync.example", DisplayName: "Dana Developer",
				GivenName: "Dana", Surname: "Developer", Mail: "dev@tenantsync.example", JobTitle: "Developer", AccountEnabled: true},
		},
	}
}

// DefaultSeed is the demo directory: the ISV's home tenant with an operator
// (app role "Operator"), consented customer tenants Contoso (50 users),
// Fabrikam (2,000) and Northwind (25,000, with a 24,998-member "All Users"
// group), and Litware (10 users) without consent yet. Every customer tenant
// has admin@<name>.example (Global Administrator) and user@<name>.example.
func DefaultSeed() *Seed {
	return &Seed{
		Apps: []App{defaultApp()},
		Tenants: []Tenant{
			homeTenant(),
			customerTenant(ContosoTenantID, "Contoso", "contoso", 50, 5, 10, 1, false, true,
				[2]string{"c18ec85d-fdbd-4cd0-982e-6e0d13b31cd6", "283e9c54-e603-4aec-ad92-974248819c16"}),
			customerTenant(FabrikamTenantID, "Fabrikam", "fabrikam", 2000, 40, 60, 2, false, true,
				[2]string{"3453b8d3-4b01-4d58-bdf7-eff5e2df1530", "3e114a6e-8b3f-4ef7-acb8-8753501c476b"}),
			customerTenant(NorthwindTenantID, "Northwind", "northwind", 25000, 200, 150, 3, true, true,
				[2]string{"99bd9a81-d67b-4e04-99b6-845dc4fe0dcb", "8ba1bc6a-5c56-4a17-999c-b847e7e8faff"}),
			customerTenant(LitwareTenantID, "Litware", "litware", 10, 2, 4, 4, false, false,
				[2]string{"d4c5c233-99a5-42ba-82c5-f1f2b8e7f861", "5b0a3f0e-5d7c-4a34-9a55-1f2d51c0e7a2"}),
		},
		DefaultPassword: DefaultPasswordValue,
		HomeTenantID:    HomeTenantID,
	}
}

// SmallSeed has the shape of DefaultSeed with small tenants so tests start
// fast: Contoso (50 users, consented), Fabrikam (30 users, consented; the
// second customer) and Litware (10 users, not consented).
func SmallSeed() *Seed {
	s := DefaultSeed()
	s.Tenants = []Tenant{
		homeTenant(),
		customerTenant(ContosoTenantID, "Contoso", "contoso", 50, 5, 10, 1, false, true,
			[2]string{"c18ec85d-fdbd-4cd0-982e-6e0d13b31cd6", "283e9c54-e603-4aec-ad92-974248819c16"}),
		customerTenant(FabrikamTenantID, "Fabrikam", "fabrikam", 30, 3, 8, 2, true, true,
			[2]string{"3453b8d3-4b01-4d58-bdf7-eff5e2df1530", "3e114a6e-8b3f-4ef7-acb8-8753501c476b"}),
		customerTenant(LitwareTenantID, "Litware", "litware", 10, 2, 4, 4, false, false,
			[2]string{"d4c5c233-99a5-42ba-82c5-f1f2b8e7f861", "5b0a3f0e-5d7c-4a34-9a55-1f2d51c0e7a2"}),
	}
	return s
}

// LoadSeed reads a JSON seed file.
func LoadSeed(path string) (*Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	var s Seed
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode seed %s: %w", path, err)
	}
	return &s, nil
}
