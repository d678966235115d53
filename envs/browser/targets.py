"""How an action names the element it acts on: exactly one of a `bid` ref from the last observation, a role with an
exact accessible name, or a form field's label text."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

# ARIA roles an agent may name (Playwright's get_by_role takes these); anything else is a clear argument error.
ROLES = frozenset("""alert alertdialog application article banner blockquote button caption cell checkbox code
columnheader combobox complementary contentinfo definition deletion dialog directory document emphasis feed figure
form generic grid gridcell group heading img insertion link list listbox listitem log main marquee math meter menu
menubar menuitem menuitemcheckbox menuitemradio navigation none note option paragraph presentation progressbar radio
radiogroup region row rowgroup rowheader scrollbar search searchbox separator slider spinbutton status strong
subscript superscript switch tab table tablist tabpanel term textbox time timer toolbar tooltip tree treegrid
treeitem""".split())  # noqa: SIM905 - a list of 80 words reads better as text


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bid: str | None = Field(default=None, pattern=r"^(f[0-9]{1,7})?e[0-9]{1,7}$",
                            description="An element's ref from the last observation, e.g. e12 or f3e12.")
    role: str | None = Field(default=None, max_length=40,
                             description="Instead of bid: the element's ARIA role (button, link, textbox, ...).")
    name: str | None = Field(default=None, max_length=1000,
                             description="With role: the element's exact accessible name (e.g. the button's text).")
    label: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="Instead of bid: the exact label text of a form field.")

    @model_validator(mode="after")
    def _exactly_one_target(self) -> Target:
        given = [k for k, v in (("bid", self.bid), ("role", self.role), ("label", self.label)) if v is not None]
        if len(given) != 1:
            raise ValueError("name the element with exactly one of: bid, role (with name), label"
                             + (f"; got {' and '.join(given)}" if given else ""))
        if self.role is not None:
            if self.role not in ROLES:
                raise ValueError(f"role {self.role!r} is not an ARIA role (e.g. button, link, textbox, checkbox)")
            if self.name is None:
                raise ValueError("role needs name: the element's exact accessible name")
        elif self.name is not None:
            raise ValueError("name goes with role; with bid or label leave it out")
        return self
