package entra

import "slices"

// roleNeed is one Graph capability the worker needs and the application
// permissions that grant it, least privileged first (protocol §5.1, §5.3, §5.4).
type roleNeed struct {
	anyOf []string
}

// requiredRoles: read users, read group memberships, read the organization.
var requiredRoles = []roleNeed{
	{anyOf: []string{"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}},
	{anyOf: []string{"GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}},
	{anyOf: []string{"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}},
}

// RequiredRoles lists the least-privileged Graph application permissions
// the worker asks for: User.Read.All, GroupMember.Read.All,
// Organization.Read.All.
func RequiredRoles() []string {
	out := make([]string, len(requiredRoles))
	for i, n := range requiredRoles {
		out[i] = n.anyOf[0]
	}
	return out
}

// MissingRoles returns the required permissions that granted does not
// cover (a broader permission such as Directory.Read.All covers several),
// named by their least-privileged form; nil when nothing is missing.
func MissingRoles(granted []string) []string {
	var missing []string
	for _, n := range requiredRoles {
		ok := false
		for _, r := range n.anyOf {
			ok = ok || slices.Contains(granted, r)
		}
		if !ok {
			missing = append(missing, n.anyOf[0])
		}
	}
	return missing
}
