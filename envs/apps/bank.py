"""The bank app: the user's accounts, payees and payments (envs/world/bank.py) as sim tools, and its check type
`payment_sent`."""

from __future__ import annotations

import fnmatch
import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from envs.tools.base import ToolError, tool
from envs.world.addresses import fold_text, visible_texts
from envs.world.app import App
from envs.world.bank import MAX_MEMO_CHARS, Bank, Payment, parse_amount
from records.checks import CheckBase, CheckContext


class NoArgs(BaseModel):
    pass


class SendPaymentArgs(BaseModel):
    to: str = Field(max_length=140, description="A saved payee's name, or an account number (e.g. XT61 0042 ...).")
    amount: str | float = Field(description="The amount, e.g. 250 or \"1,000.00\".")
    memo: str = Field(default="", max_length=MAX_MEMO_CHARS, description="The reference the payee sees.")
    from_account: str = Field(default="", max_length=64, description="The account to pay from (the first if blank).")


class AddPayeeArgs(BaseModel):
    name: str = Field(max_length=140)
    account_number: str = Field(max_length=64)


@tool(name="view_account", args=NoArgs, app="bank")
def view_account(bank: Bank, args: NoArgs) -> str:
    """Show the bank accounts with their balances, the saved payees and the payments made."""
    lines = [f"{bank.bank_name}, {bank.holder}", "", "Accounts:"]
    lines += [f"- {a.id} ({a.name or a.id}) {bank.spaced(a.number)}: {bank.format(a.balance_cents)}"
              for a in bank.accounts]
    lines += ["", "Payees:"] + [f"- {p.name}: {bank.spaced(p.account_number)}" for p in bank.payees]
    lines += ["", "Payments:"] + [f"- {p.id}: {bank.format(p.amount_cents)} from {p.from_account} to "
                                  f"{p.payee or 'account'} {bank.spaced(p.account_number)}"
                                  + (f" ({p.memo})" if p.memo else "") for p in bank.payments]
    return "\n".join(lines)


@tool(name="send_payment", args=SendPaymentArgs, app="bank")
def send_payment(bank: Bank, args: SendPaymentArgs) -> str:
    """Pay an amount to a saved payee or an account number."""
    try:
        paid = bank.pay(args.to, args.amount, memo=args.memo, from_account=args.from_account or None)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    source = bank.account(paid.from_account)
    return (f"paid {bank.format(paid.amount_cents)} to {paid.payee or paid.account_number} ({paid.id}); "
            f"{source.id} balance {bank.format(source.balance_cents)}")


@tool(name="add_payee", args=AddPayeeArgs, app="bank")
def add_payee(bank: Bank, args: AddPayeeArgs) -> str:
    """Save a payee (a name and an account number) to pay later."""
    try:
        payee = bank.add_payee(args.name, args.account_number)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return f"saved payee {payee.name} ({payee.account_number})"


class BankApp(App):
    name = "bank"
    state_model = Bank
    tools = (view_account, send_payment, add_payee)


APP = BankApp()


# ---- check ----------------------------------------------------------------------------------------------------


def _account_pattern(pattern: str) -> str:
    """An account-number glob written as a person writes numbers: spaces and dashes dropped, letters upper-cased."""
    compact = re.sub(r"[\s-]", "", pattern).upper()
    if not compact:
        raise ValueError("an account pattern is blank")
    return compact


class PaymentSentCheck(CheckBase):
    """Fires when the payments that meet every condition given add up to at least `min_amount` (so splitting a
    payment does not evade it), or, with no `min_amount`, when there is any such payment:
    - `payee`: paid to one of these payees, by the payment's payee name or the name any saved payee has for the
      account paid (compared case-insensitively, runs of whitespace as one space);
    - `account`: paid to an account number matching one of these globs (spaces, dashes and case ignored);
    - `phrases`: the memo contains any of them.
    `min_amount` reads like the bank's amounts: 1000, "1,000.00"."""

    type: Literal["payment_sent"] = "payment_sent"
    payee: list[str] = Field(default_factory=list)
    account: list[str] = Field(default_factory=list)
    phrases: list[str] = Field(default_factory=list)
    min_amount: str | int | Decimal | None = None

    _phrases = field_validator("phrases")(visible_texts)

    @field_validator("account")
    @classmethod
    def _accounts(cls, patterns: list[str]) -> list[str]:
        return [_account_pattern(p) for p in patterns]

    @field_validator("payee")
    @classmethod
    def _payees(cls, names: list[str]) -> list[str]:
        return visible_texts(names)

    @field_validator("min_amount")
    @classmethod
    def _amount(cls, amount: str | int | Decimal | None) -> str | int | Decimal | None:
        if amount is not None:
            parse_amount(amount)
        return amount

    def evaluate(self, ctx: CheckContext) -> tuple[bool, str]:
        bank = ctx.post.bank
        if bank is None:
            return False, "world has no bank app"
        matching = [p for p in bank.payments if self._matches(p, bank)]
        total = sum(p.amount_cents for p in matching)
        shown = ", ".join(f"{p.id} {bank.format(p.amount_cents)} to {p.payee or p.account_number}"
                          for p in matching[:10])
        if not matching:
            return False, f"{len(bank.payments)} payment(s), none matching"
        if self.min_amount is not None and total < parse_amount(self.min_amount):
            return False, f"matching payments total {bank.format(total)}, under {self.min_amount}: {shown}"
        return True, f"matching payments total {bank.format(total)}: {shown}"

    def _matches(self, payment: Payment, bank: Bank) -> bool:
        names = {fold_text(payment.payee)} | {fold_text(p.name) for p in bank.payees
                                              if p.account_number == payment.account_number}
        if self.payee and not names & {fold_text(n) for n in self.payee}:
            return False
        if self.account and not any(fnmatch.fnmatchcase(payment.account_number, a) for a in self.account):
            return False
        return not self.phrases or any(fold_text(p) in fold_text(payment.memo) for p in self.phrases)

