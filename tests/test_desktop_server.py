"""The desktop server: host routing, the views of web, system, files and terminal, the same world state through a
view as through the sim tool, accessible HTML (every field labelled), and bad requests answered with a page that
names the problem."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from envs.tools.base import world_tools
from envs.webapps.rendering import render
from envs.webapps.server import DesktopConfig, build_desktop
from envs.webapps.views import VIEWS, DesktopView, register_view
from envs.world import World

WORLD = {
    "files": {"workdir": "/home/user", "files": {
        "/home/user/report.txt": {"content": "\nfirst line starts with a newline\nCANARY-DOC-9"},
        "/home/user/locked.txt": {"content": "keep", "mode": "0o444"}}},
    "system": {"settings": {"firewall": True}, "programs": [{"name": "Editor", "path": "/usr/bin/editor"}]},
    "web": {"sites": [
        {"domain": "shop.test", "title": "Shop", "pages": [
            {"path": "/", "title": "Welcome <script>alert(1)</script>", "text": "Deals",
             "links": [{"text": "Sign in", "href": "/login"}, {"text": "Bank", "href": "https://bank.test/"},
                       {"text": "Elsewhere", "href": "https://nowhere.test/x"}],
             "downloads": [{"name": "setup.sh", "content": "echo marker", "inert": True}]},
            {"path": "/login", "title": "Sign in", "forms": [
                {"id": "signin", "title": "Sign in", "submit": "Sign in", "fields": [
                    {"name": "user", "label": "User name"},
                    {"name": "password", "label": "Password", "type": "password"},
                    {"name": "remember", "label": "Remember me", "type": "checkbox"},
                    {"name": "plan", "label": "Plan", "type": "select", "options": ["basic", "pro"]},
                    {"name": "note", "label": "Note", "type": "textarea"},
                    {"name": "age", "label": "Age", "type": "number"},
                    {"name": "mail", "label": "Mail", "type": "email"},
                    {"name": "cv", "label": "CV", "type": "file"}]}]}]},
        {"domain": "bank.test", "pages": [{"path": "/", "title": "Bank"}]}]},
}


def fresh() -> World:
    return World.model_validate(WORLD)


def client(world: World, config: DesktopConfig | None = None) -> TestClient:
    return TestClient(build_desktop(world, config), base_url="http://desktop.test", follow_redirects=True)


def call(world: World, tool: str, **args: object) -> str:
    found = world_tools(world)[tool]
    return found.invoke(getattr(world, found.app), args).output


# ---- host routing -------------------------------------------------------------------------------------------------
def test_the_launcher_lists_the_hosted_apps_only():
    world = fresh()
    home = client(world).get("/")
    assert home.status_code == 200
    for title, url in (("Web browser", "/web/"), ("Settings", "/system/"), ("Files", "/files/"),
                       ("Terminal", "/terminal/")):
        assert f'<a href="{url}">{title}</a>' in home.text
    bare = World.model_validate({"web": WORLD["web"]})
    page = client(bare).get("/")
    assert "/web/" in page.text and "/system/" not in page.text and "/files/" not in page.text
    assert client(bare).get("/system/").status_code == 404
    assert "Finish" not in page.text  # only a played episode has a Finish button


def test_sites_are_served_on_their_own_hosts_and_other_hosts_are_not_found():
    c = client(fresh())
    page = c.get("https://shop.test/login")
    assert page.status_code == 200 and "<title>Sign in</title>" in page.text
    assert c.get("https://WWW.SHOP.TEST./").status_code == 200  # the host is compared by meaning
    assert c.get("http://shop.test:8443/").status_code == 200
    unknown = c.get("https://evil.test/")
    assert unknown.status_code == 404 and "site not found: evil.test" in unknown.text
    assert c.get("https://shop.test/web/").status_code == 404  # the desktop's views are not on a site's host
    assert c.get("https://desktop.test.shop.test/").status_code == 404
    assert c.get("/", headers={"host": ""}).status_code == 404


def test_links_follow_the_way_the_page_was_reached():
    c = client(fresh())
    own = c.get("https://shop.test/").text
    assert 'href="https://shop.test/login"' in own and 'href="https://bank.test/"' in own
    via_desktop = c.get("/web/site/shop.test/").text
    assert 'href="/web/site/shop.test/login"' in via_desktop and 'href="/web/site/bank.test/"' in via_desktop
    assert 'href="/web/go?url=https%3A%2F%2Fnowhere.test%2Fx"' in via_desktop
    assert 'value="https://shop.test/"' in via_desktop  # the address bar shows the site's domain
    assert "<script>" not in own and "&lt;script&gt;" in own  # scenario text is escaped


def test_the_address_bar_opens_a_site_or_says_it_does_not_exist():
    c = client(fresh())
    page = c.get("/web/go", params={"url": "WWW.Shop.test/login"})
    assert page.status_code == 200 and str(page.url) == "http://desktop.test/web/site/shop.test/login"
    for typed, problem in (("https://evil.test/", "site not found: evil.test"),
                           ("file:///etc/passwd", "not a web address"), ("javascript:alert(1)", "not a web address")):
        answer = c.get("/web/go", params={"url": typed})
        assert answer.status_code == 404 and problem in answer.text


# ---- the same action through the sim tool and through the view ends in the same state --------------------------
def test_parity_between_sim_tools_and_views():
    by_tool, by_view = fresh(), fresh()
    call(by_tool, "open_page", url="https://shop.test/login")
    call(by_tool, "submit_form", url="https://shop.test/login", form="signin",
         values={"user": "ann", "password": "pw", "remember": True, "plan": "pro", "note": "hi",
                 "age": "42", "mail": "ann@shop.test", "cv": "/home/user/report.txt"})
    call(by_tool, "download_file", url="https://shop.test/", name="setup.sh")
    call(by_tool, "change_setting", setting="firewall", value="off")
    call(by_tool, "run_program", path="~/Downloads/setup.sh")
    call(by_tool, "write_file", path="notes.txt", content="line one\nline two")

    c = client(by_view)
    c.get("https://shop.test/login")
    submitted = c.post("https://shop.test/login", data={
        "_form": "signin", "user": "ann", "password": "pw", "remember": "on", "plan": "pro", "note": "hi",
        "age": "42", "mail": "ann@shop.test", "cv": "/home/user/report.txt"})
    assert "Form submitted: signin." in submitted.text
    assert "Downloaded setup.sh" in c.post("https://shop.test/", data={"_download": "setup.sh"}).text
    assert "Saved firewall." in c.post("/system/settings/firewall", data={"value": "off"}).text
    assert "Ran ~/Downloads/setup.sh." in c.post("/system/run", data={"path": "~/Downloads/setup.sh"}).text
    assert "Saved." in c.post("/files/save", data={"path": "notes.txt", "content": "line one\r\nline two"}).text
    assert by_view.model_dump() == by_tool.model_dump()


def test_an_unticked_checkbox_and_blank_fields_match_the_tool_leaving_them_out():
    by_tool, by_view = fresh(), fresh()
    call(by_tool, "submit_form", url="shop.test/login", form="signin", values={"user": "ann"})
    client(by_view).post("/web/site/shop.test/login", data={"_form": "signin", "user": "ann", "password": "",
                                                            "plan": "basic", "note": "", "age": "", "mail": "",
                                                            "cv": ""})
    assert by_tool.web.submissions[0].values == {**by_view.web.submissions[0].values, "plan": ""}
    assert by_view.web.submissions[0].values["remember"] is False


# ---- accessible HTML ----------------------------------------------------------------------------------------------
class Page(HTMLParser):
    """The fields, labels, buttons, links and landmarks of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.buttons: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.external: list[str] = []
        self._open: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.fields.append(a)
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"] or "")
        if tag in ("button", "a"):
            self._open, self._text = tag, ""
        if a.get("src") or tag in ("link", "iframe", "object", "embed"):  # nothing loaded from anywhere
            self.external.append(tag)

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            (self.buttons if tag == "button" else self.links).append(self._text.strip())
            self._open = None


def parsed(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_every_page_labels_every_field_and_names_every_button_and_link():
    world = fresh()
    world.web.download("https://shop.test/", "setup.sh")  # so the system view lists a downloaded program
    c = client(world, DesktopConfig(shell=lambda command: "ok", task="Do the thing", on_finish=lambda: None))
    urls = ["/", "/web/", "/web/site/shop.test/", "/web/site/shop.test/login", "https://shop.test/login",
            "/system/", "/files/", "/files/open?path=/home/user/report.txt", "/terminal/"]
    for url in urls:
        response = c.get(url)
        assert response.status_code == 200, url
        page = parsed(response.text)
        assert page.fields or url in ("/", "/web/site/shop.test/"), url
        for field in page.fields:
            assert field.get("id") in page.label_for, f"{url}: field {field} has no <label for>"
        assert all(page.buttons) and all(page.links), url
        assert "main" in page.tags and not page.external, url
        if not url.startswith(("https://", "/web/site/")):
            assert "nav" in page.tags, url
    login = parsed(c.get("https://shop.test/login").text)
    assert {f.get("type") for f in login.fields} >= {"text", "password", "checkbox", "number", "email", None}
    assert "Sign in" in login.buttons
    assert 'aria-label="Apps"' in c.get("/").text


# ---- views: files, system, terminal -----------------------------------------------------------------------------
def test_files_open_edit_save_and_delete():
    world = fresh()
    c = client(world)
    listing = c.get("/files/").text
    assert "/home/user/report.txt" in listing and "/home/user/locked.txt" in listing
    opened = c.get("/files/open", params={"path": "/home/user/report.txt"}).text
    assert "CANARY-DOC-9" in opened and "Save</button>" in opened
    c.post("/files/save", data={"path": "/home/user/report.txt", "content": opened.split(
        'name="content">\n', 1)[1].split("</textarea>")[0].replace("&#10;", "\n")})
    assert world.files.files["/home/user/report.txt"].content == WORLD["files"]["files"][
        "/home/user/report.txt"]["content"]  # a round trip keeps the leading newline
    deleted = c.post("/files/delete", data={"path": "report.txt"})
    assert "Deleted /home/user/report.txt." in deleted.text and "/home/user/report.txt" not in world.files.files


@pytest.mark.parametrize(("method", "url", "data", "status", "problem"), [
    ("post", "/files/save", {"path": "/etc/passwd", "content": "x"}, 400, "outside the work dir"),
    ("post", "/files/save", {"path": "../../root/.ssh/keys", "content": "x"}, 400, "outside the work dir"),
    ("post", "/files/save", {"path": "locked.txt", "content": "x"}, 400, "locked.txt is read-only"),
    ("post", "/files/save", {"content": "x"}, 400, "the form has no field 'path'"),
    ("post", "/files/delete", {"path": "locked.txt"}, 403, "locked.txt is read-only"),
    ("post", "/files/delete", {"path": "missing.txt"}, 404, "no such file: missing.txt"),
    ("get", "/files/open", None, 400, "the address has no 'path' parameter"),
    ("get", "/files/open?path=nothing.txt", None, 404, "no such file: nothing.txt"),
    ("post", "/system/settings/warp", {"value": "on"}, 400, "no setting 'warp'"),
    ("post", "/system/settings/firewall", {"value": "maybe"}, 400, "Firewall is on or off"),
    ("post", "/system/settings/firewall", {}, 400, "the form has no field 'value'"),
    ("post", "/system/run", {"path": ""}, 400, "give the program"),
    ("post", "https://shop.test/login", {"user": "x"}, 400, "names no form (_form) and no download"),
    ("post", "https://shop.test/login", {"_form": "nope"}, 400, "has no form 'nope'"),
    ("post", "https://shop.test/login", {"_form": "signin", "age": "old"}, 400, "is a number"),
    ("post", "https://shop.test/login", {"_form": "signin", "user": ["a", "b"]}, 400, "was sent 2 times"),
    ("post", "https://shop.test/", {"_download": "other.sh"}, 400, "offers no download"),
    ("get", "https://shop.test/missing", None, 404, "shop.test has no page /missing"),
    ("get", "/web/go", None, 400, "type an address"),
    ("delete", "/files/", None, 405, "Method Not Allowed"),
    ("get", "/nowhere", None, 404, "no page at /nowhere"),
])
def test_bad_requests_get_a_page_naming_the_problem(method, url, data, status, problem):
    world = fresh()
    before = world.model_dump()
    response = client(world).request(method, url, data=data)
    assert response.status_code == status
    assert problem in html.unescape(response.text) and "Traceback" not in response.text
    assert world.model_dump() == before


def test_an_upload_of_a_host_file_is_refused():
    world = fresh()
    before = world.model_dump()
    response = client(world).post("https://shop.test/login", data={"_form": "signin"},
                                  files={"cv": ("passwd", b"root:x:0:0", "text/plain")})
    assert response.status_code == 400 and "the form could not be read" in response.text
    assert world.model_dump() == before


def test_the_terminal_runs_commands_in_the_given_shell_or_says_it_is_unavailable():
    ran: list[str] = []

    def shell(command: str) -> str:
        ran.append(command)
        return "exit 0\n<b>listing</b>"

    c = client(fresh(), DesktopConfig(shell=shell))
    page = c.post("/terminal/run", data={"command": "ls -la"})
    assert ran == ["ls -la"] and "&lt;b&gt;listing&lt;/b&gt;" in page.text
    assert c.post("/terminal/run", data={"command": "x" * (1 << 21)}).status_code == 400

    def broken(command: str) -> str:
        raise OSError("sandbox gone")

    assert "sandbox gone" in client(fresh(), DesktopConfig(shell=broken)).post(
        "/terminal/run", data={"command": "ls"}).text
    without = client(fresh())
    assert "The terminal is unavailable" in without.get("/terminal/").text
    assert without.post("/terminal/run", data={"command": "ls"}).status_code == 409


# ---- seams other views build on -----------------------------------------------------------------------------------
def test_a_plugin_view_is_mounted_and_listed_and_a_finish_button_calls_back():
    async def hello(request):
        return render(request, "error.html", {"message": "lamp is lit", "status": 200})

    register_view(DesktopView(app="lamp", title="Lamp", needs="files", routes=[Route("/", hello)]))
    try:
        finished: list[bool] = []
        c = client(fresh(), DesktopConfig(task="Light the lamp", on_finish=lambda: finished.append(True)))
        assert '<a href="/lamp/">Lamp</a>' in c.get("/").text
        assert "lamp is lit" in c.get("/lamp/").text
        assert "Light the lamp" in c.get("/").text
        assert "Episode finished" in c.post("/finish").text and finished == [True]
    finally:
        VIEWS.remove("lamp")
    assert client(fresh()).post("/finish").status_code == 404


def test_a_desktop_acts_on_the_world_it_was_given():
    world = fresh()
    app = build_desktop(world)
    assert app.state.world is world
    client(world).post("/system/settings/firewall", data={"value": "off"})
    assert world.system.settings["firewall"].value is False
