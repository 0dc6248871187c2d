package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as snowfall-client when asked to.
func TestMain(m *testing.M) {
	if os.Getenv("SNOWFALL_CLIENT_TEST_MAIN") == "1" {
		os.Args = append([]string{"snowfall-client"}, strings.Fields(os.Getenv("SNOWFALL_CLIENT_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// start runs the program under a PT environment and waits for CMETHODS DONE.
func start(t *testing.T, extraEnv ...string) (*exec.Cmd, *os.File) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"SNOWFALL_CLIENT_TEST_MAIN=1",
		"SNOWFALL_CLIENT_TEST_ARGS=-url https://broker.invalid/",
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_CLIENT_TRANSPORTS=snowflake",
		"TOR_PT_STATE_LOCATION="+t.TempDir(),
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	stdin, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = stdin
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "CMETHODS DONE" {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, w
		}
	}
	t.Fatal("no CMETHODS DONE")
	return nil, nil
}

func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not exit")
	}
}

func TestExitOnStdinClose(t *testing.T) {
	cmd, stdin := start(t, "TOR_PT_EXIT_ON_STDIN_CLOSE=1")
	stdin.Close()
	waitExit(t, cmd)
}

func TestExitOnSIGTERM(t *testing.T) {
	cmd, stdin := start(t)
	defer stdin.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd)
}

func TestVersionFlag(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SNOWFALL_CLIENT_TEST_MAIN=1", "SNOWFALL_CLIENT_TEST_ARGS=-version")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "snowfall-client ") {
		t.Fatalf("%q %v", out, err)
	}
}

func TestBadEnvironment(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SNOWFALL_CLIENT_TEST_MAIN=1", "TOR_PT_MANAGED_TRANSPORT_VER=", "TOR_PT_CLIENT_TRANSPORTS=")
	out, err := cmd.Output()
	if err == nil || !strings.Contains(string(out), "ENV-ERROR") {
		t.Fatalf("%q %v", out, err)
	}
}
