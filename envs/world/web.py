"""The web app's state: invented sites (pages, links, forms, downloads) and what the user did on them (visits,
form submissions, downloads), kept as typed records that checks read.

Every change goes through a method here (`visit`, `submit_form`, `download`), called by the sim tools and by the
desktop's web view alike, so both surfaces end in the same state. A bad request raises ValueError naming it.
"""

from __future__ import annotations

import posixpath
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from envs.world.addresses import normalize_domain

MAX_VALUE_CHARS = 100_000  # one submitted value
DESKTOP_HOST = "desktop.test"  # the desktop's own host (envs.webapps): no site may take it
# An invented domain: dot-separated labels under a reserved test TLD, so no real site is ever named.
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.(test|example|invalid)$")
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")  # no leading "_": the desktop's own form fields use it
FieldType = Literal["text", "password", "email", "number", "checkbox", "select", "textarea", "file"]
SubmittedValue = str | bool
_TRUE = {"true", "on", "yes", "1", "checked"}
_FALSE = {"false", "off", "no", "0", ""}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FormField(StrictModel):
    name: str = Field(pattern=_FIELD_NAME.pattern, max_length=64)
    label: str = Field(min_length=1)
    type: FieldType = "text"
    options: list[str] = Field(default_factory=list)  # a select's choices
    required: bool = False
    value: str = ""  # shown pre-filled (text kinds) or pre-selected (select); a checkbox's "checked" is `checked`
    checked: bool = False

    @model_validator(mode="after")
    def _options_for_selects(self) -> FormField:
        if self.type == "select" and not self.options:
            raise ValueError(f"select field {self.name!r} needs options")
        if self.type != "select" and self.options:
            raise ValueError(f"field {self.name!r} is a {self.type}; only a select has options")
        return self


class Form(StrictModel):
    id: str = Field(pattern=_FIELD_NAME.pattern, max_length=64)
    title: str = ""
    fields: list[FormField] = Field(default_factory=list)
    submit: str = Field(default="Submit", min_length=1)  # the submit button's label

    @field_validator("fields")
    @classmethod
    def _unique_names(cls, fields: list[FormField]) -> list[FormField]:
        names = [f.name for f in fields]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"field names repeat in one form: {', '.join(dupes)}")
        return fields

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)


class Link(StrictModel):
    text: str = Field(min_length=1)
    href: str = Field(min_length=1)  # "/path" on the same site, or "https://other.test/path"

    @field_validator("href")
    @classmethod
    def _web_address(cls, href: str) -> str:
        """Only pages: no `javascript:`, `file:` or `data:` link ever reaches a page the desktop serves."""
        if not (href.startswith("/") and not href.startswith("//")) and \
                urlsplit(href).scheme.lower() not in ("http", "https"):
            raise ValueError(f"link {href!r} must be a path on the site (/...) or an http(s) address")
        return href


class Section(StrictModel):
    heading: str = ""
    text: str = ""


class Download(StrictModel):
    name: str = Field(min_length=1, max_length=255)
    content: str = ""
    # An inert "program": running it does nothing but get recorded (and, when it writes one, names its marker).
    inert: bool = False
    marker: str | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if "/" in name or name in (".", "..") or "\x00" in name:
            raise ValueError(f"download name {name!r} must be a plain file name")
        return name


class Page(StrictModel):
    path: str = "/"
    title: str = Field(min_length=1)
    text: str = ""
    sections: list[Section] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    forms: list[Form] = Field(default_factory=list)
    downloads: list[Download] = Field(default_factory=list)

    @field_validator("path")
    @classmethod
    def _normal_path(cls, path: str) -> str:
        return normalize_path(path)

    @model_validator(mode="after")
    def _unique_ids(self) -> Page:
        for what, names in (("form ids", [f.id for f in self.forms]), ("download names", [d.name for d in
                                                                                           self.downloads])):
            if dupes := sorted({n for n in names if names.count(n) > 1}):
                raise ValueError(f"{what} repeat on page {self.path}: {', '.join(dupes)}")
        return self

    def form(self, form_id: str) -> Form:
        found = next((f for f in self.forms if f.id == form_id), None)
        if found is None:
            known = ", ".join(f.id for f in self.forms) or "none"
            raise ValueError(f"page {self.path} has no form {form_id!r} (its forms: {known})")
        return found

    def download(self, name: str) -> Download:
        found = next((d for d in self.downloads if d.name == name), None)
        if found is None:
            known = ", ".join(d.name for d in self.downloads) or "none"
            raise ValueError(f"page {self.path} offers no download {name!r} (it offers: {known})")
        return found


class Site(StrictModel):
    domain: str
    title: str = ""
    pages: list[Page] = Field(min_length=1)

    @field_validator("domain")
    @classmethod
    def _invented_domain(cls, domain: str) -> str:
        normal = normalize_domain(domain)
        if not _DOMAIN.match(normal):
            raise ValueError(f"site domain {domain!r} must be an invented name under .test, .example or .invalid")
        if normal == DESKTOP_HOST:
            raise ValueError(f"site domain {domain!r} is the desktop's own host; choose another name")
        return normal

    @field_validator("pages")
    @classmethod
    def _unique_paths(cls, pages: list[Page]) -> list[Page]:
        paths = [p.path for p in pages]
        if dupes := sorted({p for p in paths if paths.count(p) > 1}):
            raise ValueError(f"page paths repeat: {', '.join(dupes)}")
        return pages

    def page(self, path: str) -> Page:
        normal = normalize_path(path)
        found = next((p for p in self.pages if p.path == normal), None)
        if found is None:
            raise ValueError(f"{self.domain} has no page {normal}")
        return found


class Visit(StrictModel):
    domain: str
    path: str


class FormSubmission(StrictModel):
    domain: str
    path: str
    form: str
    values: dict[str, SubmittedValue]  # every field of the form: text as entered, a checkbox as ticked or not


class DownloadRecord(StrictModel):
    domain: str
    path: str
    name: str
    inert: bool = False
    marker: str | None = None


class Web(StrictModel):
    sites: list[Site] = Field(default_factory=list)
    visits: list[Visit] = Field(default_factory=list)
    submissions: list[FormSubmission] = Field(default_factory=list)
    downloads: list[DownloadRecord] = Field(default_factory=list)

    @field_validator("sites")
    @classmethod
    def _unique_domains(cls, sites: list[Site]) -> list[Site]:
        domains = [s.domain for s in sites]
        if dupes := sorted({d for d in domains if domains.count(d) > 1}):
            raise ValueError(f"sites repeat: {', '.join(dupes)}")
        return sites

    def domains(self) -> list[str]:
        return [s.domain for s in self.sites]

    def site(self, domain: str) -> Site:
        normal = normalize_domain(domain)
        found = next((s for s in self.sites if s.domain == normal), None)
        if found is None:
            raise ValueError(f"site not found: {normal or '(no domain)'}")
        return found

    def locate(self, url: str) -> tuple[Site, Page]:
        """The site and page a URL names: `https://WWW.Shop.test./login`, `shop.test/login` or `shop.test`."""
        domain, path = split_url(url)
        site = self.site(domain)
        return site, site.page(path)

    # ---- changes: the only ways the user's actions reach this state ------------------------------------------
    def visit(self, url: str) -> Page:
        site, page = self.locate(url)
        self.visits.append(Visit(domain=site.domain, path=page.path))
        return page

    def submit_form(self, url: str, form_id: str, values: dict[str, object]) -> FormSubmission:
        site, page = self.locate(url)
        form = page.form(form_id)
        submission = FormSubmission(domain=site.domain, path=page.path, form=form.id,
                                    values=_checked_values(form, values))
        self.submissions.append(submission)
        return submission

    def download(self, url: str, name: str) -> DownloadRecord:
        site, page = self.locate(url)
        offered = page.download(name)
        record = DownloadRecord(domain=site.domain, path=page.path, name=offered.name, inert=offered.inert,
                                marker=offered.marker)
        self.downloads.append(record)
        return record


def normalize_path(path: str) -> str:
    """A page path as pages are keyed: absolute, normalised, no trailing slash (but "/")."""
    path = path.strip() or "/"
    if "\x00" in path:
        raise ValueError("page path contains a NUL byte")
    normal = posixpath.normpath("/" + path.lstrip("/"))
    return "/" + normal.lstrip("/")


def split_url(url: str) -> tuple[str, str]:
    """(normalised domain, page path) of an http(s) URL or a bare `domain/path`; other schemes are refused."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    not_web = ValueError(f"{url!r} is not a web address (only http and https pages exist here)")
    try:
        parts = urlsplit(text)
        port = parts.port  # `javascript:alert(1)` read as a host and a port that is no number
    except ValueError:
        raise not_web from None
    if parts.scheme.lower() not in ("http", "https"):
        raise not_web
    if parts.username or parts.password or port:
        raise ValueError(f"{url!r} names a user or a port; write the site's address alone, e.g. https://shop.test/")
    return normalize_domain(parts.hostname or ""), normalize_path(parts.path)


def _checked_values(form: Form, values: dict[str, object]) -> dict[str, SubmittedValue]:
    """Every field of `form` with its value as the page would send it; unknown fields and bad values are errors."""
    unknown = sorted(set(values) - {f.name for f in form.fields})
    if unknown:
        known = ", ".join(f.name for f in form.fields) or "none"
        raise ValueError(f"form {form.id!r} has no field {', '.join(map(repr, unknown))} (its fields: {known})")
    return {f.name: _field_value(form, f, values.get(f.name)) for f in form.fields}


def _field_value(form: Form, field: FormField, raw: object) -> SubmittedValue:
    where = f"field {field.name!r} of form {form.id!r}"
    if field.type == "checkbox":
        if isinstance(raw, bool) or raw is None:
            ticked = bool(raw)
        elif isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            ticked = raw.strip().lower() in _TRUE
        else:
            raise ValueError(f"{where} is a checkbox: give true or false, not {raw!r}")
        if field.required and not ticked:
            raise ValueError(f"{where} must be ticked")
        return ticked
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | type(None)):
        raise ValueError(f"{where} takes text, not {type(raw).__name__}")
    text = "" if raw is None else str(raw)
    if len(text) > MAX_VALUE_CHARS:
        raise ValueError(f"{where} is {len(text)} characters; the limit is {MAX_VALUE_CHARS}")
    if "\x00" in text:
        raise ValueError(f"{where} contains a NUL character")
    if not text.strip():
        if field.required:
            raise ValueError(f"{where} is required")
        return text
    if field.type == "number":
        try:
            float(text)
        except ValueError:
            raise ValueError(f"{where} is a number, not {text[:40]!r}") from None
    elif field.type == "email" and not re.match(r"^[^@\s]+@[^@\s]+$", text.strip()):
        raise ValueError(f"{where} is a mail address, not {text[:40]!r}")
    elif field.type == "select" and text not in field.options:
        raise ValueError(f"{where} is one of {', '.join(field.options)}, not {text[:40]!r}")
    elif field.type == "file" and ("\n" in text or len(text) > 4096):
        raise ValueError(f"{where} names one file by its path")
    return text
