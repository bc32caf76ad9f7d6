package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// opener returns the desktop's command for opening a URL in the default
// browser, or "" when there is none: `open` on macOS; elsewhere `xdg-open`,
// but only inside a graphical session (DISPLAY or WAYLAND_DISPLAY), since on
// a bare terminal it would start a text browser over the demo's output.
func opener(goos string, getenv func(string) string, lookPath func(string) (string, error)) string {
	name := "xdg-open"
	switch goos {
	case "darwin":
		name = "open"
	case "windows", "android", "ios", "js", "wasip1", "plan9":
		return ""
	default:
		if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
			return ""
		}
	}
	path, err := lookPath(name)
	if err != nil {
		return ""
	}
	return path
}

// browserOpener returns a function that opens a URL with this machine's
// opener and the opener's name, or nil and "" when there is none. The
// opener is started and not waited for (some stay until the browser
// exits); its output is discarded so it cannot garble the demo's.
func browserOpener() (open func(url string) error, name string) {
	path := opener(runtime.GOOS, os.Getenv, exec.LookPath)
	if path == "" {
		return nil, ""
	}
	return func(url string) error {
		cmd := exec.Command(path, url)
		if err := cmd.Start(); err != nil {
			return err
		}
		go cmd.Wait()
		return nil
	}, filepath.Base(path)
}
