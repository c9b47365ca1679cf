#!/usr/bin/env python3
"""The browser walk of `vger mount`'s web UI in headless Chromium.

Run by tests/mount_browser.rs with: BASE_URL ARTIFACTS DOWNLOADS RESTORE_TARGET
[SLOW_URL CANCEL_TARGET].
Opens the page, enters a source and a snapshot, goes three folders deep,
searches a name, downloads a folder as .tar.gz and .zip (into DOWNLOADS),
opens the versions of a file and a text diff, compares two snapshots,
restores a folder into RESTORE_TARGET, and checks that a hostile file name
renders as text (no alert, no console error). With SLOW_URL (a mount of
a repository read at 1 MiB/s), starts a restore of its snapshot into
CANCEL_TARGET and cancels it once files arrive. A screenshot of each view
goes to ARTIFACTS. Prints one JSON line with what the Rust side checks.
"""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

HOSTILE = "<img src=x onerror=alert(1)>"

base, artifacts, downloads, target = sys.argv[1:5]
os.makedirs(artifacts, exist_ok=True)
os.makedirs(downloads, exist_ok=True)

# VGER_BROWSER=firefox runs the walk in headless Firefox (GECKODRIVER names
# the driver); the default is Chromium.
FIREFOX = os.environ.get("VGER_BROWSER") == "firefox"
if FIREFOX:
    from selenium.webdriver.firefox.service import Service as FirefoxService

    options = webdriver.FirefoxOptions()
    for arg in ["-headless", "--width=1280", "--height=860", "-remote-allow-system-access"]:
        options.add_argument(arg)
    for name, value in [("browser.download.folderList", 2), ("browser.download.dir", downloads),
                        ("browser.download.useDownloadDir", True),
                        ("browser.download.always_ask_before_handling_new_types", False),
                        ("browser.helperApps.neverAsk.saveToDisk", "application/gzip,application/zip"),
                        ("layout.css.prefers-color-scheme.content-override", 1)]:
        options.set_preference(name, value)
    service = FirefoxService(executable_path=os.environ.get("GECKODRIVER", "geckodriver"),
                             log_path=os.path.join(artifacts, "geckodriver.log"))
    driver = webdriver.Firefox(service=service, options=options)
else:
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,860"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": downloads, "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
wait = WebDriverWait(driver, 60)


def color_scheme(dark):
    """Makes the page see a dark (or light) system theme."""
    if FIREFOX:
        with driver.context(driver.CONTEXT_CHROME):
            driver.execute_script(
                "Services.prefs.setIntPref('layout.css.prefers-color-scheme.content-override', arguments[0])",
                0 if dark else 1)
    else:
        value = "dark" if dark else "light"
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": value}]})
shots = []
report = {}


def shot(name):
    path = os.path.join(artifacts, name + ".png")
    driver.save_screenshot(path)
    shots.append(path)


def click_link(text):
    wait.until(EC.element_to_be_clickable((By.LINK_TEXT, text))).click()


def wait_text(css, text):
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def no_alert():
    try:
        alert = driver.switch_to.alert
        raise AssertionError("an alert opened: " + alert.text)
    except NoAlertPresentException:
        pass


def wait_download(name):
    deadline = time.time() + 60
    path = os.path.join(downloads, name)
    while time.time() < deadline:
        partial = [p for p in os.listdir(downloads) if p.endswith((".crdownload", ".part"))]
        if os.path.exists(path) and not partial:
            return path
        time.sleep(0.2)
    raise AssertionError("no download " + name + " in " + str(os.listdir(downloads)))


try:
    # The repository: sources and every snapshot.
    driver.get(base + "/")
    wait_text("main", "Sources")
    shot("01-sources")

    # A source: its snapshots.
    click_link("files")
    wait_text("main h1", "Snapshots of")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.list tbody tr")
    report["snapshot_rows"] = len(rows)
    shot("02-snapshots")

    # The newest snapshot (first row).
    rows[0].find_element(By.TAG_NAME, "a").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".viewport .row")))
    shot("03-snapshot-root")

    # Three folders deep: docs by keyboard, then reports, then 2026.
    grid = driver.find_element(By.ID, "grid")
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".viewport .row .name")]
    report["root_names"] = names
    for _ in range(names.index("docs")):
        grid.send_keys(Keys.ARROW_DOWN)
    grid.send_keys(Keys.ENTER)
    wait.until(EC.presence_of_element_located((By.LINK_TEXT, "reports")))
    click_link("reports")
    wait.until(EC.presence_of_element_located((By.LINK_TEXT, "2026")))
    click_link("2026")
    wait.until(EC.presence_of_element_located((By.LINK_TEXT, "q3-report.txt")))
    report["crumbs"] = [c.text for c in driver.find_elements(By.CSS_SELECTOR, ".crumbs a, .crumbs span[aria-current]")]
    shot("04-three-levels")

    # A text preview.
    click_link("q3-report.txt")
    wait_text("#preview pre", "quarter three")
    # No stray "null" text node beside the preview (replaceChildren(x, null)).
    assert "null" not in driver.find_element(By.ID, "preview").text, driver.find_element(By.ID, "preview").text
    shot("05-preview-text")

    # Search by name from the docs folder, across the source's snapshots.
    driver.get(base + "/files/latest/")
    search = wait.until(EC.presence_of_element_located((By.ID, "search")))
    search.send_keys("added")
    driver.find_element(By.ID, "search-scope").send_keys("all")
    search.send_keys(Keys.ENTER)
    wait_text("main h1", "match")
    report["search"] = [a.text for a in driver.find_elements(By.CSS_SELECTOR, ".results a")]
    shot("06-search")

    # Download the docs folder as tar.gz and zip.
    driver.get(base + "/files/latest/docs/")
    wait.until(EC.presence_of_element_located((By.LINK_TEXT, "readme.txt")))
    click_link("Download .tar.gz")
    report["tar"] = wait_download("docs.tar.gz")
    click_link("Download .zip")
    report["zip"] = wait_download("docs.zip")

    # Versions of a file and a text diff of two of them.
    click_link("readme.txt")
    wait_text("#preview pre", "hello from vger mount")
    driver.find_element(By.XPATH, "//aside//button[text()='Versions']").click()
    wait_text("main h1", "Versions of")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.list tbody tr")))
    report["versions"] = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.list tbody tr .change")]
    shot("07-versions")
    click_link("Text diff")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.hunk")))
    report["textdiff_added"] = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "tr.ins")]
    shot("08-text-diff")

    # The diff of two snapshots.
    driver.get(base + "/files/latest/")
    compare = wait.until(EC.presence_of_element_located((By.ID, "compare")))
    wait.until(lambda d: len(compare.find_elements(By.TAG_NAME, "option")) > 1)
    compare.find_elements(By.TAG_NAME, "option")[1].click()
    wait_text("main h1", "Changes from")
    report["diff"] = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.list tbody tr")]
    shot("09-snapshot-diff")

    # The hostile name renders as text.
    driver.get(base + "/files/latest/photos/")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".viewport .row .name")))
    time.sleep(0.5)
    no_alert()
    report["hostile_shown"] = any(e.text == HOSTILE for e in driver.find_elements(By.CSS_SELECTOR, ".viewport .row .name"))
    report["hostile_img_tags"] = len(driver.find_elements(By.CSS_SELECTOR, ".viewport img"))
    click_link("red.png")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#preview img")))
    wait.until(lambda d: d.execute_script("return document.querySelector('#preview img').naturalWidth") == 1)
    shot("10-hostile-name-and-image")

    # Dark mode follows the system.
    color_scheme(dark=True)
    driver.get(base + "/files/latest/docs/")
    wait.until(EC.presence_of_element_located((By.LINK_TEXT, "readme.txt")))
    report["dark_background"] = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    shot("11-dark-mode")
    color_scheme(dark=False)

    # Restore the docs folder to this machine.
    driver.get(base + "/files/latest/")
    wait.until(EC.presence_of_element_located((By.LINK_TEXT, "docs")))
    box = driver.find_element(By.XPATH, "//div[@role='row'][.//a[text()='docs']]//input[@type='checkbox']")
    box.click()
    driver.find_element(By.ID, "restore-open").click()
    driver.find_element(By.ID, "restore-target").send_keys(target)
    driver.find_element(By.ID, "restore-start").click()
    wait.until(EC.presence_of_element_located((By.ID, "restore-done")))
    report["restore"] = driver.find_element(By.ID, "restore-done").text
    dialog_text = driver.find_element(By.ID, "restore-done").find_element(By.XPATH, "..").text
    assert "null" not in dialog_text, dialog_text
    shot("12-restore")

    # Cancel a running restore (of a repository read at 1 MiB/s).
    if len(sys.argv) > 6:
        slow, cancel_target = sys.argv[5:7]
        driver.get(slow + "/files/latest/")
        wait.until(EC.presence_of_element_located((By.LINK_TEXT, "data")))
        driver.find_element(By.ID, "restore-open").click()
        driver.find_element(By.ID, "restore-target").send_keys(cancel_target)
        driver.find_element(By.ID, "restore-start").click()
        stop = wait.until(EC.element_to_be_clickable((By.ID, "restore-cancel")))
        # Under way: the first files are written.
        wait.until(lambda d: (t := d.find_element(By.CSS_SELECTOR, ".restore-status p").text)[:1].isdigit() and not t.startswith("0 files"))
        report["cancel_progress"] = driver.find_element(By.CSS_SELECTOR, ".restore-status p").text
        shot("13-restore-running")
        stop.click()
        wait.until(EC.presence_of_element_located((By.ID, "restore-cancelled")))
        report["cancelled"] = driver.find_element(By.ID, "restore-cancelled").text
        report["cancel_button_hidden"] = not driver.find_element(By.ID, "restore-cancel").is_displayed()
        shot("14-restore-cancelled")

    no_alert()
    if FIREFOX:
        report["console_errors"] = "geckodriver cannot read the console"
    else:
        logs = driver.get_log("browser")
        report["console_errors"] = [l["message"] for l in logs if l["level"] == "SEVERE" and "favicon" not in l["message"]]
    report["screenshots"] = shots
except TimeoutException as e:
    shot("failure")
    report["error"] = "timed out: " + str(e.msg) + " at " + driver.current_url
    report["page"] = driver.find_element(By.TAG_NAME, "body").text[:2000]
except Exception as e:  # any failure: keep a picture of the page
    shot("failure")
    report["error"] = type(e).__name__ + ": " + str(e)[:1500] + " at " + driver.current_url
finally:
    driver.quit()
print(json.dumps(report))
