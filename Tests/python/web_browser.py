"""Drives Quarry's web application in headless Chromium (Selenium with Debian's chromium-driver), as an analyst
would: sign in, open the reference story's form, submit a domain, watch the run page reach `succeeded` by its live
updates (no reload), read the report's host table, and open the story's diagram. Saves a screenshot of each page.

Usage: web_browser.py BASE_URL USERNAME PASSWORD DOMAIN SCREENSHOT_DIR
Prints one JSON object: the run's guid, its final status, and the report table's rows.
"""

import json
import sys
import time
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

base, username, password, domain, shots = sys.argv[1:6]

options = webdriver.ChromeOptions()
for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1000"):
    options.add_argument(argument)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
# Generous: the test suite runs in parallel on two cores.
wait = WebDriverWait(driver, 120)


def shot(name):
    # The whole page, not just the window: resize to the document's height first.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(700, min(height + 40, 6000)))
    driver.save_screenshot(f"{shots}/{name}.png")
    driver.set_window_size(1280, 1000)


try:
    driver.get(base + "/forms/dns_threat_hunt")
    # Not signed in: the form sends the browser to the sign-in page and back.
    wait.until(expected_conditions.url_contains("/login"))
    shot("sign-in")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form.panel button[type=submit]").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "f-domain")))
    assert driver.current_url.endswith("/forms/dns_threat_hunt"), driver.current_url

    # A mistake first: the server answers with the message next to the field, keeping what was typed.
    driver.find_element(By.ID, "f-recipients").send_keys("not an address")
    driver.find_element(By.CSS_SELECTOR, "form.panel button[type=submit]").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "e-recipients")))
    assert "Domain is required" in driver.find_element(By.ID, "e-domain").text
    driver.find_element(By.ID, "f-recipients").clear()
    driver.find_element(By.ID, "f-domain").send_keys(domain)
    from_field = driver.find_element(By.ID, "f-from")
    from_field.clear()
    from_field.send_keys("now-2h")
    shot("form")
    driver.find_element(By.CSS_SELECTOR, "form.panel button[type=submit]").click()
    wait.until(expected_conditions.url_contains("/runs/"))
    guid = driver.current_url.rsplit("/", 1)[1]

    # The page updates itself (server-sent events) until the run ends; it is never reloaded here.
    def ended(driver):
        status = driver.find_element(By.ID, "run-status").text
        return status if status in ("succeeded", "failed", "no_match") else False

    # The live update replaces <main> under the finder's feet now and then: a stale element means "look again".
    status = WebDriverWait(driver, 180, ignored_exceptions=[StaleElementReferenceException]).until(ended)

    def report_rows():
        headers = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "table.report thead th")]
        return [dict(zip(headers, [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]))
                for row in driver.find_elements(By.CSS_SELECTOR, "table.report tbody tr")]

    # The page redraws once more when the stream ends; a table read across that redraw is read again.
    for attempt in range(5):
        try:
            rows = report_rows()
            break
        except StaleElementReferenceException:
            time.sleep(0.5)
    shot("run")

    driver.get(base + "/stories/dns_threat_hunt")
    image = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".diagram img")))
    wait.until(lambda driver: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    diagram_width = driver.execute_script("return arguments[0].naturalWidth", image)
    shot("diagram")
    print(json.dumps({"run": guid, "status": status, "rows": rows, "diagram_width": diagram_width}))
except Exception:
    # The caller reads standard output only: the failure and the page it happened on go there.
    print(traceback.format_exc())
    print("at", driver.current_url)
    sys.exit(1)
finally:
    driver.quit()
