"""The web page in a real headless browser (Debian's chromium through chromium-driver and
Selenium): the page loads, a recommendation appears, a like changes the list, and an activation
in the operator view shows the new version. Screenshots go to /tmp (never into git)."""
import os, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from serve import Server

SHOTS = os.environ.get("SCREENSHOTS", "/tmp/recommender-browser-screenshots")
os.makedirs(SHOTS, exist_ok=True)
TOKEN = "browser-test-token"

server = Server("--demo-items", "800", "--demo-users", "300", token=TOKEN)
options = Options()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))


def listed(d):
    """The result ids, read in one script call (the list is re-rendered under our feet)."""
    return d.execute_script("return [...document.querySelectorAll('li.result')].map(e => e.dataset.item)")

failed = False
try:
    driver.get(server.url + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#pipeline option")) >= 2)
    assert "recommender" in driver.title
    driver.find_element(By.ID, "user").send_keys("u3")
    driver.find_element(By.ID, "recommend-user").click()
    wait.until(lambda d: len(listed(d)) == 10)
    before = listed(driver)
    assert "genre" in driver.find_element(By.CSS_SELECTOR, "li.result .meta").text
    assert "similarity" in driver.find_element(By.ID, "timings").text
    driver.save_screenshot(f"{SHOTS}/1-recommendations.png")
    print("a recommendation appears:", before[:3], "…")

    liked = before[0]
    driver.find_element(By.CSS_SELECTOR, "li.result .like").click()
    wait.until(lambda d: len(listed(d)) == 10 and liked not in listed(d))
    after = listed(driver)
    assert after != before and len(after) == 10, (before, after)
    driver.save_screenshot(f"{SHOTS}/2-after-like.png")
    print("a like changes the list:", liked, "gone; now", after[:3], "…")

    driver.find_element(By.ID, "token").send_keys(TOKEN)
    button = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'tr[data-model="als"][data-version="2"] button.activate')))
    button.click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "operator-message"), "als: v2 is active"))
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, 'tr[data-model="als"][data-version="2"] .version'), "★"))
    driver.find_element(By.ID, "recommend-user").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "als v2"))
    driver.save_screenshot(f"{SHOTS}/3-activated.png")
    print("an activation shows the new version: als v2 starred and answering")

    wait.until(lambda d: d.find_element(By.ID, "rate-live").text not in ("", "–"))
    print("operator view: rate", driver.find_element(By.ID, "rate-live").text, "req/s, p99", driver.find_element(By.ID, "p99-live").text, "ms")
except Exception as error:
    failed = True
    driver.save_screenshot(f"{SHOTS}/failure.png")
    print("browser test failed:", repr(error), file=sys.stderr)
finally:
    driver.quit()
    status = server.stop()
if status != 0:
    print(f"the server exited with {status} after SIGTERM", file=sys.stderr)
    failed = True
print(f"screenshots in {SHOTS}")
sys.exit(1 if failed else 0)
