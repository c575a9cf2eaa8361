// Package deploy holds no code: its tests check the deployment files at the
// repository root (docker-compose.yml, Dockerfile) with the real Compose
// loader, on machines without a Docker engine too. With the build tag
// composetest (make compose-test) TestComposeStack also builds, starts and
// drives the stack on a Docker engine.
package deploy
