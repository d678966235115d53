"""The bank app's state: the user's accounts (balances in integer cents), saved payees and the payments made, kept
as typed records the checks read. Every change is a method here, called by the sim tools (envs/apps/bank.py) and by
the desktop's bank view alike. Account numbers are fictional and IBAN-like (`XT61 0042 1337 0001`)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Two letters, two digits, 8 to 30 letters or digits, once spaces are removed and letters upper-cased.
_ACCOUNT_NUMBER = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{8,30}$")
_PLAIN_AMOUNT = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$|^\.[0-9]{1,2}$")
_GROUPED_AMOUNT = re.compile(r"^[0-9]{1,3}(,[0-9]{3})+(\.[0-9]{1,2})?$")  # 1,000.00
_CURRENCY_MARKS = re.compile(r"^(?:[€$£]|EUR|USD|GBP)\s*|\s*(?:[€$£]|EUR|USD|GBP)$", re.IGNORECASE)
MAX_AMOUNT_CENTS = 10**15
MAX_MEMO_CHARS = 140
MAX_PAYEE_CHARS = 140


def canonical_account_number(text: str) -> str:
    """`xt61 0042 1337 0001` -> `XT61004213370001` (spaces and dashes dropped, letters upper-cased); ValueError
    naming the text if it is no account number."""
    compact = re.sub(r"[\s-]", "", text).upper()
    if not _ACCOUNT_NUMBER.match(compact):
        raise ValueError(f"{text.strip()[:60]!r} is not an account number (two letters, two digits, then 8 to 30 "
                         "letters or digits, e.g. XT61 0042 1337 0001)")
    return compact


def parse_amount(value: str | int | float | Decimal) -> int:
    """An amount in cents: 1000, 1000.5, "1000.00", "1,000.00", "€ 1,000" all read as 100000 cents. Ambiguous or
    unreadable text ("1.000,00", "ten"), more than two decimals, zero and negative amounts are a ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"the amount {value!r} is not a number")
    if isinstance(value, str):
        text = _CURRENCY_MARKS.sub("", value.strip()).replace(" ", "")
        if _GROUPED_AMOUNT.match(text):
            text = text.replace(",", "")
        if not _PLAIN_AMOUNT.match(text):
            raise ValueError(f"the amount {value.strip()[:40]!r} is not a number like 1000 or 1,000.00")
        value = text
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"the amount {value!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"the amount {value!r} is not a number")
    if amount <= 0:
        raise ValueError(f"the amount must be more than zero, got {value!r}")
    if amount * 100 > MAX_AMOUNT_CENTS:
        raise ValueError(f"the amount {value!r} is too large")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"the amount {value!r} has more than two decimals")
    return int(amount * 100)


def spaced_number(number: str) -> str:
    """`XT61004213370001` -> `XT61 0042 1337 0001`, as account numbers are printed."""
    return " ".join(number[i:i + 4] for i in range(0, len(number), 4))


def format_cents(cents: int, currency: str = "EUR") -> str:
    """100000 -> `1,000.00 EUR`."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d} {currency}"


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")  # e.g. "checking"
    name: str = ""
    number: str
    balance_cents: int = 0

    @field_validator("number")
    @classmethod
    def _canonical(cls, number: str) -> str:
        return canonical_account_number(number)


class Payee(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=MAX_PAYEE_CHARS)
    account_number: str

    @field_validator("account_number")
    @classmethod
    def _canonical(cls, number: str) -> str:
        return canonical_account_number(number)


class Payment(BaseModel):
    """A payment the user made: what the checks judge."""

    model_config = ConfigDict(extra="forbid")
    id: str
    from_account: str  # an Account id
    payee: str  # the saved payee's name, or "" when paid to an account number no payee has
    account_number: str  # canonical
    amount_cents: int
    currency: str
    memo: str = ""


class Bank(BaseModel):
    model_config = ConfigDict(extra="forbid")
    holder: str = "User"
    bank_name: str = "Harbor Bank"
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    accounts: list[Account] = Field(min_length=1)
    payees: list[Payee] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Bank:
        ids = [a.id for a in self.accounts]
        if len(set(ids)) != len(ids):
            raise ValueError(f"account ids must be unique, got {ids}")
        names = [p.name.casefold() for p in self.payees]
        if len(set(names)) != len(names):
            raise ValueError(f"payee names must be unique (ignoring case), got {[p.name for p in self.payees]}")
        return self

    # ---- reading --------------------------------------------------------------------------------------------

    def account(self, account_id: str | None) -> Account:
        """The account named by id, name or number; the first account when None or blank."""
        if account_id is None or not account_id.strip():
            return self.accounts[0]
        wanted = account_id.strip().casefold()
        for a in self.accounts:
            if wanted in (a.id, a.name.casefold(), a.number.casefold()) or _same_number(account_id, a.number):
                return a
        raise ValueError(f"no account {account_id!r} (accounts: {', '.join(a.id for a in self.accounts)})")

    def payee_named(self, name: str) -> Payee | None:
        wanted = " ".join(name.casefold().split())
        return next((p for p in self.payees if " ".join(p.name.casefold().split()) == wanted), None)

    def payee_with_number(self, number: str) -> Payee | None:
        return next((p for p in self.payees if p.account_number == number), None)

    def format(self, cents: int) -> str:
        return format_cents(cents, self.currency)

    @staticmethod
    def spaced(number: str) -> str:
        return spaced_number(number)

    # ---- changes --------------------------------------------------------------------------------------------

    def add_payee(self, name: str, account_number: str) -> Payee:
        """Save a payee. Raises ValueError for a bad number or a name already saved."""
        name = " ".join(name.split())
        if not name:
            raise ValueError("the payee needs a name")
        if len(name) > MAX_PAYEE_CHARS:
            raise ValueError(f"the payee's name is {len(name)} characters; at most {MAX_PAYEE_CHARS}")
        if self.payee_named(name) is not None:
            raise ValueError(f"a payee named {name!r} is already saved")
        payee = Payee(name=name, account_number=canonical_account_number(account_number))
        self.payees.append(payee)
        return payee

    def pay(self, to: str, amount: str | int | float | Decimal, memo: str = "",
            from_account: str | None = None) -> Payment:
        """Pay `amount` to `to` (a saved payee's name, or an account number) from an account (the first by default).
        Raises ValueError for an unknown payee, a bad amount or number, or too little money."""
        source = self.account(from_account)
        cents = parse_amount(amount)
        memo = memo.strip()
        if len(memo) > MAX_MEMO_CHARS:
            raise ValueError(f"the memo is {len(memo)} characters; at most {MAX_MEMO_CHARS}")
        payee = self.payee_named(to)
        if payee is None:
            try:
                number = canonical_account_number(to)
            except ValueError:
                saved = ", ".join(p.name for p in self.payees) or "none"
                raise ValueError(f"{to.strip()[:60]!r} is neither a saved payee (payees: {saved}) nor an account "
                                 "number") from None
            payee = self.payee_with_number(number)
        else:
            number = payee.account_number
        if number == source.number:
            raise ValueError(f"cannot pay account {source.id!r} from itself")
        if cents > source.balance_cents:
            raise ValueError(f"insufficient funds: {self.format(cents)} is more than the balance of {source.id!r} "
                             f"({self.format(source.balance_cents)})")
        source.balance_cents -= cents
        target = next((a for a in self.accounts if a.number == number), None)
        if target is not None:  # a transfer between the user's own accounts
            target.balance_cents += cents
        payment = Payment(id=f"pay-{len(self.payments) + 1}", from_account=source.id,
                          payee=payee.name if payee else (target.name or target.id if target else ""),
                          account_number=number, amount_cents=cents, currency=self.currency, memo=memo)
        self.payments.append(payment)
        return payment


def _same_number(text: str, number: str) -> bool:
    try:
        return canonical_account_number(text) == number
    except ValueError:
        return False
