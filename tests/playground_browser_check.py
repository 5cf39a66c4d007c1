"""The playground page in a real browser (headless Chromium through Selenium's WebDriver),
against `ponder serve` on the demo model with an API key. Run by scripts/browser-check.sh,
which starts the server and sets PONDER_BASE, PONDER_API_KEY and SCREENSHOTS.

Checks: the page asks for the key and then names the model; min = max = 48 thinking tokens
give reasoning, then an answer, and a counter reading exactly 48; Stop cancels a long request
(the server's /metrics shows no running sequence); End thinking now ends a long thinking and
the answer starts, marked as a requested end (Esc then stops it); the JSON-schema box gives a
JSON answer; no Content-Security-Policy violation; a phone-sized window still shows every
control. Screenshots go to SCREENSHOTS.
"""

import json
import os
import re
import shutil
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["PONDER_BASE"]
KEY = os.environ["PONDER_API_KEY"]
SHOTS = os.environ.get("SCREENSHOTS", "target/playground-screenshots")


def start_browser():
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The system's Chromium and driver: Selenium Manager would go to the network for its own.
    options.binary_location = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
    service = ChromeService(executable_path=os.environ.get("CHROMEDRIVER", shutil.which("chromedriver")))
    return webdriver.Chrome(options=options, service=service)


def running_sequences():
    text = urllib.request.urlopen(BASE + "/metrics", timeout=10).read().decode()
    match = re.search(r"^ponder_running_sequences (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def set_field(driver, element_id, value):
    field = driver.find_element(By.ID, element_id)
    field.clear()
    if value != "":
        field.send_keys(str(value))


def last_turn(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#log .turn.assistant")[-1]


def send(driver, text):
    """Types `text` and presses Enter; returns the assistant turn the page opens for it."""
    before = len(driver.find_elements(By.CSS_SELECTOR, "#log .turn.assistant"))
    prompt = driver.find_element(By.ID, "prompt")
    prompt.send_keys(text)
    prompt.send_keys(Keys.ENTER)
    try:
        WebDriverWait(driver, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log .turn.assistant")) > before)
    except TimeoutException:
        raise AssertionError("no turn opened: " + driver.find_element(By.ID, "error").text) from None
    return last_turn(driver)


def wait_idle(driver, seconds=180):
    """Until the request in flight is over (Send is enabled again)."""
    WebDriverWait(driver, seconds).until(lambda d: d.find_element(By.ID, "send").is_enabled())


def wait_reasoning(driver, turn, at_least=5, seconds=120):
    """Until `turn` has streamed a few thinking tokens."""
    def enough(_):
        counter = turn.find_element(By.CSS_SELECTOR, ".counter")
        return int(counter.get_attribute("data-tokens") or 0) >= at_least

    WebDriverWait(driver, seconds).until(enough)


def check_no_policy_violations(driver):
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        assert "Content Security Policy" not in message, message
        assert entry.get("level") != "SEVERE" or "401" in message, message


def main():
    os.makedirs(SHOTS, exist_ok=True)
    driver = start_browser()
    try:
        driver.get(BASE + "/")
        wait = WebDriverWait(driver, 30)
        # No key yet: the page shows the API's 401 and asks for the key.
        error = wait.until(ec.visibility_of_element_located((By.ID, "error")))
        assert "401" in error.text and "API key" in error.text, error.text
        key = driver.find_element(By.ID, "api-key")
        key.send_keys(KEY)
        key.send_keys(Keys.TAB)  # `change` fires: kept in session storage, models reloaded.
        wait.until(lambda d: d.find_element(By.ID, "model").text != "")
        assert driver.execute_script("return sessionStorage.getItem('ponder.apiKey')") == KEY
        print("model:", driver.find_element(By.ID, "model").text)

        # min = max = 48 thinking tokens.
        for field, value in [("min-tokens", 48), ("max-tokens-thinking", 48), ("temperature", 0), ("seed", 7),
                             ("max-tokens", 160)]:
            set_field(driver, field, value)
        turn = send(driver, "What is 17 * 23?")
        wait_reasoning(driver, turn, 1)
        wait_idle(driver)
        counter = turn.find_element(By.CSS_SELECTOR, ".counter")
        assert counter.get_attribute("data-tokens") == "48", counter.text
        assert counter.get_attribute("data-exact") == "true", counter.text
        assert counter.text.startswith("48 / 48"), counter.text
        answer = turn.find_element(By.CSS_SELECTOR, ".answer").text
        reasoning = turn.find_element(By.CSS_SELECTOR, ".reasoning-text").text
        assert answer.strip(), "the answer pane is empty"
        assert reasoning.strip(), "the reasoning pane is empty"
        stats = turn.find_element(By.CSS_SELECTOR, ".stats").text
        assert "48 reasoning" in stats and "tok/s" in stats and "to first token" in stats, stats
        marks = [m.get_attribute("data-mark") for m in turn.find_elements(By.CSS_SELECTOR, ".mark")]
        print("48/48:", counter.text, "| marks:", marks, "| answer:", answer[:80].replace("\n", " "))
        # At 48 tokens the cap forces the end (an earlier end became a continuation).
        assert marks and marks[-1] == "forced_end", marks
        driver.save_screenshot(os.path.join(SHOTS, "playground.png"))

        # Stop on a long request: the server frees its sequence.
        set_field(driver, "min-tokens", 1500)
        set_field(driver, "max-tokens-thinking", 2000)
        set_field(driver, "max-tokens", 2400)
        turn = send(driver, "Explain how a compiler works, step by step.")
        wait_reasoning(driver, turn, 5)
        assert running_sequences() >= 1, "the long request runs"
        driver.find_element(By.ID, "stop").click()
        wait_idle(driver, 30)
        deadline = time.time() + 30
        while running_sequences() > 0:
            assert time.time() < deadline, "the stopped request kept running"
            time.sleep(0.2)
        assert "stopped" in turn.find_element(By.CSS_SELECTOR, ".stats").text
        print("stop: no running sequence on /metrics")

        # End thinking now: the thinking ends at once and the answer starts.
        turn = send(driver, "Explain how a compiler works, step by step.")
        wait_reasoning(driver, turn, 8)
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "end-thinking").is_enabled())
        driver.find_element(By.ID, "end-thinking").click()
        WebDriverWait(driver, 60).until(lambda d: turn.find_element(By.CSS_SELECTOR, ".answer").text.strip() != "")
        ended = turn.find_elements(By.CSS_SELECTOR, ".mark.forced")
        assert ended and "requested" in ended[-1].text, [m.text for m in ended]
        driver.find_element(By.ID, "prompt").send_keys(Keys.ESCAPE)  # Esc stops it too.
        wait_idle(driver, 30)
        assert "stopped" in turn.find_element(By.CSS_SELECTOR, ".stats").text
        tokens = int(turn.find_element(By.CSS_SELECTOR, ".counter").get_attribute("data-tokens"))
        assert tokens < 1500, f"the thinking ran on to {tokens} tokens"
        print(f"end thinking now: thinking ended after ~{tokens} tokens, the answer started")
        driver.save_screenshot(os.path.join(SHOTS, "end-thinking.png"))

        # The JSON-schema box: without thinking, the answer is JSON of that shape.
        driver.find_element(By.ID, "thinking-on").click()
        set_field(driver, "max-tokens", 60)
        schema = '{"type": "object", "properties": {"product": {"type": "integer"}}, "required": ["product"]}'
        driver.find_element(By.ID, "schema").send_keys(schema)
        turn = send(driver, "What is 17 * 23? Reply in JSON.")
        wait_idle(driver)
        answer = json.loads(turn.find_element(By.CSS_SELECTOR, ".answer").text)
        assert isinstance(answer["product"], int), answer
        assert not turn.find_element(By.CSS_SELECTOR, ".reasoning").is_displayed(), "no thinking pane"
        print("schema:", answer)

        check_no_policy_violations(driver)

        # A phone-sized window (a fresh load: the chat first, the settings behind their
        # button): every control is still there to reach.
        driver.set_window_size(390, 844)
        driver.get(BASE + "/")
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "model").get_attribute("textContent") != "")
        assert not driver.find_element(By.ID, "settings").is_displayed()
        driver.save_screenshot(os.path.join(SHOTS, "phone.png"))
        driver.find_element(By.ID, "toggle-settings").click()
        for element_id in ["prompt", "send", "stop", "end-thinking", "min-tokens", "api-key"]:
            element = driver.find_element(By.ID, element_id)
            driver.execute_script("arguments[0].scrollIntoView()", element)
            assert element.is_displayed(), element_id
            assert element.size["width"] <= 390, (element_id, element.size)
        print("playground browser check passed; screenshots in", SHOTS)
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
