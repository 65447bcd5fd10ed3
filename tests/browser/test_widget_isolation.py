"""The widget inside any page: the page's styles cannot change how it looks (docs/widget.md,
"Inside any page"). In the Django admin, as docs/install.md puts it there (light, dark, and dark by
the admin's own theme toggle), and in a page whose stylesheet styles everything (pages/hostile.css).
"""

from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from playwright.async_api import expect

from tests.browser import test_widget
from tests.browser.test_widget import connected, create, notify, switch

pytestmark = test_widget.pytestmark
open_widget = test_widget.open_widget  # the fixtures
screenshots = test_widget.screenshots

HOSTILE_CSS = Path(__file__).parent / "pages" / "hostile.css"

# Light and dark --nw-bg, as widget.css has them.
PANEL_BACKGROUND = {"light": "rgb(255, 255, 255)", "dark": "rgb(22, 27, 34)"}

# Computed styles of the widget's text, as the page's CSS used to turn them (the admin's
# #user-tools: uppercase, right-aligned, letter-spaced, 11 px).
TEXT_STYLE = """(node) => {
  const style = getComputedStyle(node);
  return {
    textTransform: style.textTransform,
    textAlign: style.textAlign,
    letterSpacing: style.letterSpacing,
    fontSize: style.fontSize,
    fontStyle: style.fontStyle,
  };
}"""
OWN_TEXT_STYLE = {
    "textTransform": "none",
    "textAlign": "start",
    "letterSpacing": "normal",
    "fontSize": "16px",
    "fontStyle": "normal",
}

# The contrast ratio (WCAG) of the bell's icon on what is behind it: the bell's own background
# over the page's header.
BELL_CONTRAST = """([bell, header]) => {
  const canvas = new OffscreenCanvas(1, 1).getContext("2d");
  const paint = (...colours) => {
    for (const colour of colours) {
      canvas.fillStyle = colour;
      canvas.fillRect(0, 0, 1, 1);
    }
    return [...canvas.getImageData(0, 0, 1, 1).data].slice(0, 3);
  };
  const luminance = (rgb) => {
    const [r, g, b] = rgb.map((c) => {
      c /= 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const behind = paint(
    getComputedStyle(header).backgroundColor,
    getComputedStyle(bell).backgroundColor,
  );
  const icon = paint(getComputedStyle(bell).color);
  const [light, dark] = [luminance(icon), luminance(behind)].sort((a, b) => b - a);
  return (light + 0.05) / (dark + 0.05);
}"""


async def text_style(locator):
    return await locator.evaluate(TEXT_STYLE)


async def staff_user(make_user):
    return await database_sync_to_async(make_user)("staff", is_staff=True, is_superuser=True)


@pytest.mark.parametrize("theme", ["light", "dark", "dark-by-the-toggle"])
async def test_in_the_django_admin_the_widget_keeps_its_own_look(
    open_widget, make_user, theme, screenshots, axe_script
):
    staff = await staff_user(make_user)
    await create(staff, "Weekly report is ready", body="Your numbers for last week.", url="/")
    await create(staff, "Disk almost full", body="The shared drive is at 92%.", level="warning")
    scheme = "dark" if theme == "dark" else "light"
    page = await open_widget(
        staff, path="/admin/", color_scheme=scheme, viewport={"width": 1100, "height": 700}
    )
    await connected(page)
    if theme == "dark-by-the-toggle":  # the reader's system is light; the admin's toggle says dark
        await page.get_by_role("button", name="Toggle theme").click()
        await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    await notify(staff, "Invoice paid", body="Invoice #7 was paid.", level="success", url="/")
    await expect(page.locator(".nw-toast")).to_be_visible()
    bell = page.locator(".nw-bell")
    await bell.click()
    panel = page.locator(".nw-panel")
    await expect(page.locator(".nw-item")).to_have_count(3)

    # The admin's header (#user-tools, where the bell sits) makes its text uppercase, right-aligned,
    # letter-spaced and small: none of it reaches the panel or the toast.
    for part in (
        ".nw-panel-title",
        ".nw-item-title",
        ".nw-toast-title",
    ):
        assert await text_style(page.locator(part).first) == OWN_TEXT_STYLE, part
    for part in (".nw-item-body", ".nw-toast-body", ".nw-connection"):
        style = await text_style(page.locator(part).first)
        assert (style["textTransform"], style["textAlign"], style["letterSpacing"]) == (
            "none",
            "start",
            "normal",
        ), part
    for part in (".nw-action", ".nw-mark-all", ".nw-toast-close"):  # buttons centre their text
        style = await text_style(page.locator(part).first)
        assert (style["textTransform"], style["letterSpacing"]) == ("none", "normal"), part
    # The page's font family is followed on purpose (--nw-font); its size is not.
    body_font = await page.evaluate("getComputedStyle(document.body).fontFamily")
    assert await panel.evaluate("(panel) => getComputedStyle(panel).fontFamily") == body_font

    # Light or dark as the admin is, whether it follows the system or its toggle.
    background = await panel.evaluate("(panel) => getComputedStyle(panel).backgroundColor")
    assert background == PANEL_BACKGROUND["dark" if "dark" in theme else "light"]

    # The open bell stands out on the admin's header, hovered or not (WCAG 1.4.11: 3:1).
    header = page.locator("#header")
    assert (
        await page.evaluate(
            BELL_CONTRAST, [await bell.element_handle(), await header.element_handle()]
        )
        >= 3
    )
    await page.mouse.move(0, 300)
    assert (
        await page.evaluate(
            BELL_CONTRAST, [await bell.element_handle(), await header.element_handle()]
        )
        >= 3
    )

    await page.add_script_tag(path=str(axe_script))
    result = await page.evaluate(
        "axe.run(document.querySelector('.nw'), {resultTypes: ['violations']})"
    )
    assert [v["id"] for v in result["violations"]] == [], theme

    if theme != "dark-by-the-toggle":
        await page.wait_for_timeout(300)  # past the toast's slide-in
        await page.screenshot(path=screenshots / f"admin-{theme}.png")


async def fingerprint(page):
    """Every computed style and the size of every element of the widget (custom properties and
    where the panel and toasts are placed aside: the panel's place and height follow the bell,
    which the page lays out), and the styles the host element keeps."""
    return await page.evaluate(
        """() => {
          const root = document.querySelector("[data-notifications-widget]");
          const placed = new Set(["left", "right", "top", "bottom", "inset-inline-start",
                                  "inset-inline-end", "inset-block-start", "inset-block-end"]);
          const elements = [...root.shadowRoot.querySelectorAll("*")].filter(
            (node) => !["LINK", "STYLE"].includes(node.tagName));
          const of = (node, names) => {
            const style = getComputedStyle(node);
            return Object.fromEntries(names.map((name) => [name, style.getPropertyValue(name)]));
          };
          const all = (node) => [...getComputedStyle(node)].filter(
            (name) => !name.startsWith("--") && !placed.has(name)
              && !(["max-height", "max-block-size"].includes(name) && node.matches(".nw-panel")));
          const host = of(root, ["padding-top", "padding-left", "border-top-width",
            "border-left-style", "background-color", "background-image", "box-shadow",
            "outline-style", "overflow-x", "overflow-y", "opacity", "filter", "transform",
            "clip-path"]);
          return {
            host,
            elements: elements.map((node, index) => {
              const box = node.getBoundingClientRect();
              return {
                name: [index, node.tagName.toLowerCase(), ...[...node.classList].sort()].join("."),
                bell: Boolean(node.closest(".nw-bell")) || node.classList.contains("nw-ui"),
                size: [Math.round(box.width * 2) / 2, Math.round(box.height * 2) / 2],
                style: of(node, all(node)),
              };
            }),
          };
        }"""
    )


# The bell's icon takes the colour of the text around it (--nw-bell-fg: currentColor), and so
# does what is derived from it: its hover tint, and every colour at its default (currentColor).
def from_the_pages_colour(name, old, new, value, new_value):
    if not old["bell"]:
        return False
    if name == "background-color":
        return True
    return value == old["style"]["color"] and new_value == new["style"]["color"]


def differences(before, after):
    assert [e["name"] for e in before["elements"]] == [e["name"] for e in after["elements"]]
    found = []
    if before["host"] != after["host"]:
        found.append(("host", before["host"], after["host"]))
    for old, new in zip(before["elements"], after["elements"], strict=True):
        if old["size"] != new["size"]:
            found.append((old["name"], "size", old["size"], new["size"]))
        for name, value in old["style"].items():
            if new["style"][name] == value:
                continue
            if from_the_pages_colour(name, old, new, value, new["style"][name]):
                continue
            found.append((old["name"], name, value, new["style"][name]))
    return found


async def test_a_page_that_styles_everything_cannot_change_the_widget(
    open_widget, alice, screenshots
):
    await create(alice, "Weekly report is ready", body="Your numbers.", url="/", category="billing")
    await create(
        alice, "Disk almost full", body="At 92%.", level="warning", read_at="2026-01-01T00:00:00Z"
    )
    # Strict CSP, as the demo serves it: the page's stylesheet is a file of the site. Tall
    # enough that no view reaches the panel's max-height, which follows where the page puts
    # the bell: the preferences (with their muted threads) would be cut at different heights.
    page = await open_widget(
        alice, path=None, viewport={"width": 1000, "height": 1400}, reduced_motion="reduce"
    )
    await page.route("**/hostile.css", lambda route: route.fulfill(path=HOSTILE_CSS))
    await page.goto("/")
    await connected(page)
    await notify(alice, "Invoice paid", body="Invoice #7 was paid.", level="success", url="/")
    await expect(page.locator(".nw-toast")).to_be_visible()
    await page.locator(".nw-bell").click()
    await expect(page.locator(".nw-item")).to_have_count(3)
    await page.locator(".nw-toast").hover()  # it stays while the pointer is on it

    views = {}
    for view in ("list", "preferences"):
        if view == "preferences":
            await page.evaluate("document.querySelector('link[href$=\"hostile.css\"]').remove()")
            await page.get_by_role("button", name="Preferences").click()
            await expect(switch(page, "billing")).to_be_visible()
            await page.locator(".nw-toast").hover()
        views[view] = await fingerprint(page)
        await page.evaluate(
            """() => new Promise((loaded) => {
              const link = Object.assign(document.createElement("link"),
                                         {rel: "stylesheet", href: "/hostile.css", onload: loaded});
              document.head.append(link);
            })"""
        )
        # It applies: the page's own text is uppercase now.
        assert await page.evaluate("getComputedStyle(document.body).textTransform") == "uppercase"
        assert differences(views[view], await fingerprint(page)) == [], view
        if view == "list":
            await page.screenshot(path=screenshots / "hostile-page.png")

    # What does follow the page, on purpose: the bell's colour is the page's text colour.
    assert await page.locator(".nw-bell").evaluate("(b) => getComputedStyle(b).color") == (
        "rgb(192, 0, 192)"
    )
