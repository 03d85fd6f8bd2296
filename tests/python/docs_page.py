"""Drives the host's /docs page in headless Chromium, as a person would.

Usage: docs_page.py BASE_URL EMAIL PASSWORD SCREENSHOT CHROMIUM CHROMEDRIVER

The page must load with no failed request and no console error and list the API's
endpoints; "Authorize" with the account's credentials, then "Try it out" and "Execute"
on GET /users/me/ must show the account. Exits 0 when all of that holds, else prints
what did not and exits 1. The screenshot is taken either way.
"""

import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

BUTTON = "//div[contains(@class, 'auth-btn-wrapper')]//button[normalize-space() = '{}']"
ENDPOINTS = {("POST", "/users/"), ("POST", "/token"), ("GET", "/users/me/"), ("POST", "/logout")}


def browser(chromium, chromedriver):
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,2400", "--no-first-run", "--disable-background-networking"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def failed_requests(driver):
    """Responses with a 4xx/5xx status, and requests that never got one."""
    failures = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.responseReceived" and params["response"]["status"] >= 400:
            failures.append(f'{params["response"]["status"]} {params["response"]["url"]}')
        elif message["method"] == "Network.loadingFailed" and not params.get("canceled"):
            failures.append(f'failed: {params.get("errorText")} (request {params.get("requestId")})')
    return failures


def main(base, email, password, screenshot, chromium, chromedriver):
    driver = browser(chromium, chromedriver)
    wait = WebDriverWait(driver, 30)
    problems = []
    try:
        driver.get(f"{base}/docs/")
        wait.until(ready.presence_of_all_elements_located((By.CSS_SELECTOR, ".opblock")))
        listed = {
            (block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
             block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"))
            for block in driver.find_elements(By.CSS_SELECTOR, ".opblock")
        }
        missing = ENDPOINTS - listed
        if missing:
            problems.append(f"endpoints not listed: {sorted(missing)} (listed: {sorted(listed)})")
        loading = failed_requests(driver)
        if loading:
            problems.append(f"failed requests while loading: {loading}")

        # Authorize: the OAuth2 password flow against /token.
        driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
        wait.until(ready.visibility_of_element_located((By.ID, "oauth_username"))).send_keys(email)
        driver.find_element(By.ID, "oauth_password").send_keys(password)
        driver.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .authorize").click()
        # Logged in when the dialog offers to log out.
        wait.until(ready.presence_of_element_located((By.XPATH, BUTTON.format("Logout"))))
        driver.find_element(By.XPATH, BUTTON.format("Close")).click()

        # Try it out: GET /users/me/.
        me = driver.find_element(By.ID, "operations-accounts-read_users_me")
        me.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(lambda _: me.find_elements(By.CSS_SELECTOR, ".try-out__btn"))[0].click()
        wait.until(lambda _: me.find_elements(By.CSS_SELECTOR, ".execute"))[0].click()
        status = wait.until(lambda _: me.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"))
        body = me.find_element(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_description pre").text
        if status[0].text.strip() != "200" or email not in body:
            problems.append(f"GET /users/me/ showed {status[0].text!r}: {body!r}")

        later = failed_requests(driver)
        if later:
            problems.append(f"failed requests: {later}")
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        if errors:
            problems.append(f"console errors: {errors}")
    except Exception as error:  # a step that never happened: report which, with the page kept
        problems.append(f"{type(error).__name__}: {error}")
    finally:
        driver.save_screenshot(screenshot)
        driver.quit()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:7]))
