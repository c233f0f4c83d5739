// compose-validate loads a Compose file with the Compose Specification's reference loader
// (github.com/compose-spec/compose-go/v2, the library Docker Compose itself parses compose files with) in every
// combination a user can meet: without a .env file and with one, for no profile, each given profile, and all ("*").
// A case fails on any load error (schema, interpolation, consistency such as depends_on on an unknown service) and on
// any warning the loader logs (an unset variable defaulting to blank, an obsolete attribute): Docker Compose would
// print those and carry on, which is how a wrong file reaches a host.
//
//	compose-validate [-json] [-file docker-compose.yml] [-env-file .env.example] [-profiles app,sandbox] <project-dir>
//
// Exit 0 when every case loads cleanly, 1 otherwise, 2 on bad usage. With -json, stdout is one JSON document with
// each case's resolved model (what `docker compose config` would print), for tests to check.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
)

// warnings collects what the loader logs at warning level or above during one case.
type warnings struct{ lines []string }

func (w *warnings) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (w *warnings) Fire(e *logrus.Entry) error {
	w.lines = append(w.lines, e.Message)
	return nil
}

type result struct {
	EnvFile  string          `json:"envFile"`
	Profiles []string        `json:"profiles"`
	Services []string        `json:"services"`
	Error    string          `json:"error,omitempty"`
	Warnings []string        `json:"warnings"`
	Project  json.RawMessage `json:"project,omitempty"`
}

// load runs one case the way `docker compose` builds its project (docker/compose cmd/compose/compose.go
// ToProjectOptions), minus the host's environment, so the result does not depend on the machine it runs on.
func load(dir, file, envFile string, profiles []string, w *warnings) (*types.Project, error) {
	opts := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(dir)}
	if envFile != "" {
		opts = append(opts, cli.WithEnvFiles(envFile))
	}
	opts = append(opts,
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	po, err := cli.NewProjectOptions([]string{filepath.Join(dir, file)}, opts...)
	if err != nil {
		return nil, err
	}
	w.lines = nil
	project, err := po.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	return project.WithServicesEnvironmentResolved(true)
}

func main() {
	asJSON := flag.Bool("json", false, "print every case's result and resolved model as JSON")
	file := flag.String("file", "docker-compose.yml", "the compose file, relative to the project directory")
	envFile := flag.String("env-file", "", "the .env to load in the second set of cases (relative to the project directory)")
	profileList := flag.String("profiles", "app,sandbox", "comma-separated profiles, each loaded alone (none and * are always added)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-validate [-json] [-file docker-compose.yml] [-env-file .env.example] [-profiles app,sandbox] <project-dir>")
		os.Exit(2)
	}
	dir, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	w := &warnings{}
	logrus.AddHook(w)
	logrus.SetOutput(io.Discard) // reported per case below instead

	envFiles := []string{""}
	if *envFile != "" {
		envFiles = append(envFiles, filepath.Join(dir, *envFile))
	}
	profileSets := [][]string{{}}
	for _, p := range strings.Split(*profileList, ",") {
		if p = strings.TrimSpace(p); p != "" {
			profileSets = append(profileSets, []string{p})
		}
	}
	profileSets = append(profileSets, []string{"*"})

	var results []result
	failed := false
	for _, env := range envFiles {
		for _, profiles := range profileSets {
			r := result{EnvFile: env, Profiles: profiles, Services: []string{}, Warnings: []string{}}
			if env != "" {
				r.EnvFile, _ = filepath.Rel(dir, env)
			}
			project, err := load(dir, *file, env, profiles, w)
			r.Warnings = append(r.Warnings, w.lines...)
			if err != nil {
				r.Error = err.Error()
			} else {
				r.Services = project.ServiceNames()
				sort.Strings(r.Services)
				if *asJSON {
					if r.Project, err = project.MarshalJSON(); err != nil {
						r.Error = err.Error()
					}
				}
			}
			if r.Error != "" || len(r.Warnings) > 0 {
				failed = true
			}
			results = append(results, r)
		}
	}

	if *asJSON {
		out, err := json.Marshal(map[string]any{"file": *file, "cases": results})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(string(out))
	} else {
		for _, r := range results {
			env, prof := r.EnvFile, strings.Join(r.Profiles, ",")
			if env == "" {
				env = "no .env"
			}
			if prof == "" {
				prof = "no profile"
			}
			status := "ok  "
			if r.Error != "" || len(r.Warnings) > 0 {
				status = "FAIL"
			}
			fmt.Printf("%s %s (%s, %s): %s\n", status, *file, env, prof, strings.Join(r.Services, " "))
			if r.Error != "" {
				fmt.Printf("     error: %s\n", r.Error)
			}
			for _, line := range r.Warnings {
				fmt.Printf("     warning: %s\n", line)
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}
