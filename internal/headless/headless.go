// Package headless says how the project runs Chromium without a screen:
// Debian's binary and the flags of the browser tests (cmd/iocd) and the
// wall benchmark (cmd/iocbench), so that both drive the same browser the
// same way. It holds no state.
package headless

import "github.com/chromedp/chromedp"

// Chromium is where Debian's chromium package installs the browser.
const Chromium = "/usr/bin/chromium"

// Options are the allocator options of a headless Chromium at path, with
// the profile directory profile and a window of width × height: no
// sandbox (the tests run as root), no GPU, no background traffic or
// updates, no throttling of background tabs and timers, no scrollbars
// and no sound.
func Options(path, profile string, width, height int) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
	}
}
