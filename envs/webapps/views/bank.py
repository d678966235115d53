"""The bank app's view: the accounts overview with the payments made, the payment form and the payees. Every change
goes through the `Bank` methods the sim tools use (`pay`, `add_payee`)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envs.webapps.rendering import BadRequest, form_text, read_form, redirect, render, world_of
from envs.webapps.views import DesktopView
from envs.world.bank import Bank


def _bank(request: Request) -> Bank:
    bank = world_of(request).bank
    if bank is None:
        raise BadRequest("this desktop has no bank", 404)
    return bank


async def _overview(request: Request) -> Response:
    bank = _bank(request)
    notice = ""
    if paid_id := request.query_params.get("paid"):  # looked up, never echoed
        paid = next((p for p in bank.payments if p.id == paid_id), None)
        notice = f"Paid {bank.format(paid.amount_cents)} to {paid.payee or paid.account_number}." if paid else ""
    return render(request, "bank/overview.html", {"bank": bank, "notice": notice})


def _pay_page(request: Request, *, values: dict[str, str] | None = None, error: str = "",
              status: int = 200) -> Response:
    return render(request, "bank/pay.html", {"bank": _bank(request), "values": values or {}, "error": error},
                  status=status)


async def _pay_form(request: Request) -> Response:
    return _pay_page(request, values={"payee": request.query_params.get("payee", "")})


async def _pay(request: Request) -> Response:
    bank = _bank(request)
    form = await read_form(request)
    values = {k: form_text(form, k, required=False) for k in ("from_account", "payee", "account_number", "amount",
                                                             "memo")}
    try:
        payee, number = values["payee"].strip(), values["account_number"].strip()
        if payee and number:
            raise ValueError("choose a saved payee or enter an account number, not both")
        if not (payee or number):
            raise ValueError("choose a saved payee or enter an account number")
        paid = bank.pay(payee or number, values["amount"], memo=values["memo"],
                        from_account=values["from_account"] or None)
    except ValueError as exc:
        return _pay_page(request, values=values, error=str(exc), status=400)
    return redirect("/bank/?" + urlencode({"paid": paid.id}))


def _payees_page(request: Request, *, values: dict[str, str] | None = None, error: str = "", notice: str = "",
                 status: int = 200) -> Response:
    context = {"bank": _bank(request), "values": values or {}, "error": error, "notice": notice}
    return render(request, "bank/payees.html", context, status=status)


async def _payees(request: Request) -> Response:
    bank = _bank(request)
    added = bank.payee_named(request.query_params.get("added", ""))  # looked up, never echoed
    return _payees_page(request, notice=f"Saved payee {added.name}." if added else "")


async def _add_payee(request: Request) -> Response:
    bank = _bank(request)
    form = await read_form(request)
    values = {k: form_text(form, k, required=False) for k in ("name", "account_number")}
    try:
        payee = bank.add_payee(values["name"], values["account_number"])
    except ValueError as exc:
        return _payees_page(request, values=values, error=str(exc), status=400)
    return redirect("/bank/payees?" + urlencode({"added": payee.name}))


VIEW = DesktopView(
    app="bank", title="Bank", description="Accounts, payments and payees",
    routes=[Route("/", _overview), Route("/pay", _pay_form), Route("/pay", _pay, methods=["POST"]),
            Route("/payees", _payees), Route("/payees", _add_payee, methods=["POST"])],
)
