"""The client: one method per operation of TrustLedger's HTTP API.

``client/asynchronous.py`` is this file made asynchronous by
``scripts/async_client.py`` (a test keeps the two in step): change this one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal, TypeVar

import httpx2 as httpx
import msgspec

from client import answers as a
from client import calls
from client.calls import RETRIES_DEFAULT, Call, backoff, segment
from client.errors import Unreachable, problem_error
from ledger import commands as c

Role = Literal["seller", "buyer"]
Step = Literal["day", "week", "month"]
T = TypeVar("T")
LOG_PAGE_DEFAULT = 1_000
# A followed stream ends on the server's schedule; the client reconnects.
STREAM_READ_TIMEOUT_SECONDS = 60.0


class TrustLedger:
    """A TrustLedger server, called with one API key.

    Every call is retried on network errors, 429, 503 and retryable
    conflicts, with exponential backoff and jitter (``retries`` times); an
    append keeps its idempotency key across its retries, so it is recorded
    once. With ``read_your_writes`` (the default) queries of the view wait
    until it reflects the highest position this client appended.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retries: int = RETRIES_DEFAULT,
        read_your_writes: bool = True,
        transport: httpx.BaseTransport | None = None,
        seed: int | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )
        self.retries = retries
        self.read_your_writes = read_your_writes
        self.written = 0  # the highest log position this client has appended
        self._rng = random.Random(seed)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TrustLedger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- Sending --------------------------------------------------------------------

    def send(self, call: Call) -> httpx.Response:
        """Send a call, retrying what may succeed later; its answer, or raise."""
        headers, params = self._prepare(call)
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = self._http.request(
                    call.method, call.path, params=params, content=call.body, headers=headers
                )
            except httpx.TransportError as error:
                if attempt >= self.retries:
                    raise Unreachable(f"{call.method} {call.path}: {error}") from error
            else:
                if response.is_success:
                    return response
                refused = problem_error(response.status_code, response.content, response.headers)
                if not refused.retryable or attempt >= self.retries:
                    raise refused
                retry_after = refused.retry_after
            attempt += 1
            time.sleep(backoff(attempt, retry_after, self._rng))

    def _prepare(self, call: Call) -> tuple[dict[str, str], dict[str, str]]:
        headers = {}
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        params = dict(call.params)
        own_writes = call.reads_view and self.read_your_writes and self.written
        if own_writes and "min_position" not in params and "at_position" not in params:
            params["min_position"] = str(self.written)
        return headers, params

    def _figure(self, path: str, answer: type[T], **params: object) -> T:
        """A figure of the view, read after this client's own writes."""
        figure: T = self._answer(calls.query(path, reads_view=True, **params), answer)
        return figure

    def _answer(self, call: Call, answer: type[Any]) -> Any:
        response = self.send(call)
        return msgspec.json.decode(response.content, type=answer)

    # --- Appends --------------------------------------------------------------------

    def append(self, command: c.Command, *, idempotency_key: str | None = None) -> a.Appended:
        """Append any command; the positions written (the first time, if repeated)."""
        response = self.send(calls.append(command, idempotency_key))
        appended = msgspec.json.decode(response.content, type=a.Appended)
        if response.headers.get("idempotency-replayed") == "true":
            appended = msgspec.structs.replace(appended, replayed=True)
        if appended.positions:
            self.written = max(self.written, *appended.positions)
        return appended

    def register_member(
        self, command: c.RegisterMember, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def verify_identity(
        self, command: c.VerifyIdentity, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def create_trade(
        self, command: c.CreateTrade, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def pay_into_escrow(
        self, command: c.PayIntoEscrow, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def ship_trade(self, command: c.ShipTrade, *, idempotency_key: str | None = None) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def confirm_receipt(
        self, command: c.ConfirmReceipt, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def extend_confirm_timer(
        self, command: c.ExtendConfirmTimer, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def close_trade(
        self, command: c.CloseTrade, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def request_refund(
        self, command: c.RequestRefund, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def take_refund_step(
        self, command: calls.RefundStep, *, idempotency_key: str | None = None
    ) -> a.Appended:
        """Agree, reject, ship the return, confirm it, or cancel: the command says which."""
        return self.append(command, idempotency_key=idempotency_key)

    def escalate_dispute(
        self, command: c.EscalateDispute, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def rule_dispute(
        self, command: c.RuleDispute, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def give_rating(
        self, command: c.GiveRating, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def revise_rating(
        self, command: c.ReviseRating, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def withdraw_rating(
        self, command: c.WithdrawRating, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def explain_rating(
        self, command: c.ExplainRating, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def review_follow_up(
        self, command: c.ReviewFollowUp, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def shield_rating(
        self, command: c.ShieldRating, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def file_complaint(
        self, command: c.FileComplaint, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def escalate_complaint(
        self, command: c.EscalateComplaint, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def record_complaint_follow_up(
        self, command: c.RecordComplaintFollowUp, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def pay_compensation(
        self, command: c.PayCompensation, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def rule_complaint(
        self, command: c.RuleComplaint, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def record_violation(
        self, command: c.RecordViolation, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def confirm_fake_trades(
        self, command: c.ConfirmFakeTrades, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    def record_search_cheating(
        self, command: c.RecordSearchCheating, *, idempotency_key: str | None = None
    ) -> a.Appended:
        return self.append(command, idempotency_key=idempotency_key)

    # --- Queries --------------------------------------------------------------------

    def list_rulebooks(self) -> a.RulebooksAnswer:
        answer: a.RulebooksAnswer = self._answer(calls.query("/v1/rulebooks"), a.RulebooksAnswer)
        return answer

    def get_rulebook(self, rulebook: str) -> a.RulebookAnswer:
        """A rulebook whole: levels, tiers, windows, factors and deadlines."""
        answer: a.RulebookAnswer = self._answer(
            calls.query(f"/v1/rulebooks/{segment(rulebook)}"), a.RulebookAnswer
        )
        return answer

    def get_credit(
        self,
        member_id: str,
        *,
        role: Role = "seller",
        as_of: datetime | None = None,
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.CreditAnswer:
        return self._figure(
            f"/v1/members/{segment(member_id)}/credit",
            a.CreditAnswer,
            role=role,
            as_of=as_of,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def explain_credit(
        self,
        member_id: str,
        *,
        role: Role = "seller",
        cursor: str | None = None,
        limit: int | None = None,
        as_of: datetime | None = None,
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.CreditExplanationAnswer:
        """One page of the ratings behind a credit; pass ``next_cursor`` for the next."""
        return self._figure(
            f"/v1/members/{segment(member_id)}/credit/explanation",
            a.CreditExplanationAnswer,
            role=role,
            cursor=cursor,
            limit=limit,
            as_of=as_of,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_seller_dsr(
        self,
        seller_id: str,
        *,
        as_of: datetime | None = None,
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.DsrAnswer:
        return self._figure(
            f"/v1/sellers/{segment(seller_id)}/dsr",
            a.DsrAnswer,
            as_of=as_of,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_credit_series(
        self,
        member_id: str,
        *,
        from_: datetime,
        to: datetime,
        step: Step = "day",
        role: Role = "seller",
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.CreditSeriesAnswer:
        """The credit at the end of each step from ``from_`` to ``to``, in time order."""
        return self._figure(
            f"/v1/members/{segment(member_id)}/credit/series",
            a.CreditSeriesAnswer,
            role=role,
            **{"from": from_},
            to=to,
            step=step,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_seller_dsr_series(
        self,
        seller_id: str,
        *,
        from_: datetime,
        to: datetime,
        step: Step = "day",
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.DsrSeriesAnswer:
        """The shop scores at the end of each step from ``from_`` to ``to``, in time order."""
        return self._figure(
            f"/v1/sellers/{segment(seller_id)}/dsr/series",
            a.DsrSeriesAnswer,
            **{"from": from_},
            to=to,
            step=step,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_seller_violations_series(
        self,
        seller_id: str,
        *,
        from_: datetime,
        to: datetime,
        step: Step = "day",
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.ViolationsSeriesAnswer:
        """The violation points, seal and bans in force at the end of each step, in time order."""
        return self._figure(
            f"/v1/sellers/{segment(seller_id)}/violations/series",
            a.ViolationsSeriesAnswer,
            **{"from": from_},
            to=to,
            step=step,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_trade(self, trade_id: str) -> a.TradeRecord:
        """A trade's state now and every fact recorded about it, with positions."""
        answer: a.TradeRecord = self._answer(
            calls.query(f"/v1/trades/{segment(trade_id)}"), a.TradeRecord
        )
        return answer

    def list_seller_trades(
        self, seller_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> a.TradePage:
        """A page of a seller's trades in creation order; pass ``next_cursor`` on."""
        call = calls.query(
            f"/v1/sellers/{segment(seller_id)}/trades", reads_view=True, cursor=cursor, limit=limit
        )
        answer: a.TradePage = self._answer(call, a.TradePage)
        return answer

    def list_buyer_trades(
        self, buyer_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> a.TradePage:
        """A page of a buyer's purchases in creation order; pass ``next_cursor`` on."""
        call = calls.query(
            f"/v1/buyers/{segment(buyer_id)}/trades", reads_view=True, cursor=cursor, limit=limit
        )
        answer: a.TradePage = self._answer(call, a.TradePage)
        return answer

    def list_seller_complaints(
        self, seller_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> a.ComplaintPage:
        """A page of the complaints against a seller in filing order; pass ``next_cursor`` on."""
        call = calls.query(
            f"/v1/sellers/{segment(seller_id)}/complaints",
            reads_view=True,
            cursor=cursor,
            limit=limit,
        )
        answer: a.ComplaintPage = self._answer(call, a.ComplaintPage)
        return answer

    def list_seller_refunds(
        self, seller_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> a.RefundPage:
        """A page of the refunds requested of a seller in request order; pass ``next_cursor`` on."""
        call = calls.query(
            f"/v1/sellers/{segment(seller_id)}/refunds", reads_view=True, cursor=cursor, limit=limit
        )
        answer: a.RefundPage = self._answer(call, a.RefundPage)
        return answer

    def get_credit_batch(
        self,
        member_ids: list[str],
        *,
        role: Role = "seller",
        as_of: datetime | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.CreditBatch:
        """Up to 1,000 members' credit in one role at once, in the order asked."""
        body = self._batch(as_of, rulebook, min_position)
        response = self.send(
            calls.post("/v1/credit/batch", {**body, "member_ids": member_ids, "role": role})
        )
        return a.credit_batch(response.content)

    def get_dsr_batch(
        self,
        seller_ids: list[str],
        *,
        as_of: datetime | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.DsrBatch:
        """Up to 1,000 sellers' shop scores at once, in the order asked."""
        body = self._batch(as_of, rulebook, min_position)
        response = self.send(calls.post("/v1/dsr/batch", {**body, "seller_ids": seller_ids}))
        return a.dsr_batch(response.content)

    def _batch(
        self, as_of: datetime | None, rulebook: str | None, min_position: int | None
    ) -> dict[str, object]:
        """A batch's scope, reading this client's own writes unless told a position."""
        if min_position is None and self.read_your_writes and self.written:
            min_position = self.written
        when = None if as_of is None else as_of.isoformat()
        return {"as_of": when, "rulebook": rulebook, "min_position": min_position}

    def get_seller_violations(
        self,
        seller_id: str,
        *,
        as_of: datetime | None = None,
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.ViolationsAnswer:
        return self._figure(
            f"/v1/sellers/{segment(seller_id)}/violations",
            a.ViolationsAnswer,
            as_of=as_of,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_seller_level(
        self,
        seller_id: str,
        *,
        as_of: datetime | None = None,
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.SellerLevelAnswer:
        """The seller's level from its defects (null under a rulebook without levels)."""
        return self._figure(
            f"/v1/sellers/{segment(seller_id)}/level",
            a.SellerLevelAnswer,
            as_of=as_of,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_buyer_history(
        self,
        buyer_id: str,
        *,
        as_of: datetime | None = None,
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.BuyerHistoryAnswer:
        return self._figure(
            f"/v1/buyers/{segment(buyer_id)}/history",
            a.BuyerHistoryAnswer,
            as_of=as_of,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_seller_penalty(
        self,
        seller_id: str,
        *,
        as_of: datetime | None = None,
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.PenaltyAnswer:
        return self._figure(
            f"/v1/sellers/{segment(seller_id)}/penalty",
            a.PenaltyAnswer,
            as_of=as_of,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_seller_penalty_series(
        self,
        seller_id: str,
        *,
        from_: datetime,
        to: datetime,
        step: Step = "day",
        at_position: int | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.PenaltySeriesAnswer:
        """The penalty at the end of each step from ``from_`` to ``to``, in time order."""
        return self._figure(
            f"/v1/sellers/{segment(seller_id)}/penalty/series",
            a.PenaltySeriesAnswer,
            **{"from": from_},
            to=to,
            step=step,
            at_position=at_position,
            rulebook=rulebook,
            min_position=min_position,
        )

    def get_penalties(
        self,
        seller_ids: list[str],
        *,
        as_of: datetime | None = None,
        rulebook: str | None = None,
        min_position: int | None = None,
    ) -> a.PenaltyBatch:
        """Up to 1,000 sellers' penalties at once, in the order asked."""
        body = {**self._batch(as_of, rulebook, min_position), "seller_ids": seller_ids}
        response = self.send(calls.post("/v1/penalties/batch", body))
        return a.penalty_batch(response.content)

    def follow_penalty_changes(
        self, after: int = 0, *, follow: bool = True, limit: int | None = None
    ) -> Iterator[a.PenaltyChange]:
        """Every seller's penalty each time it changes, after a feed position.

        Following, the stream never ends: when the server closes it (it does
        every few minutes) or the connection breaks, the client reconnects
        after the last change it yielded. Without ``follow``, the changes
        there are now.
        """
        position, attempt = after, 0
        while True:
            call = calls.query("/v1/penalties/changes", after=position, follow=follow, limit=limit)
            try:
                with self._http.stream(
                    "GET",
                    call.path,
                    params=call.params,
                    timeout=httpx.Timeout(
                        self._http.timeout.connect, read=STREAM_READ_TIMEOUT_SECONDS
                    ),
                ) as response:
                    if not response.is_success:
                        response.read()
                        refused = problem_error(
                            response.status_code, response.content, response.headers
                        )
                        if not refused.retryable or attempt >= self.retries:
                            raise refused
                        attempt += 1
                        time.sleep(backoff(attempt, refused.retry_after, self._rng))
                        continue
                    for line in response.iter_lines():
                        if line:
                            change = msgspec.json.decode(line, type=a.PenaltyChange)
                            position, attempt = change.feed_position, 0
                            yield change
            except httpx.TransportError as error:
                if attempt >= self.retries:
                    raise Unreachable(f"GET /v1/penalties/changes: {error}") from error
                attempt += 1
                time.sleep(backoff(attempt, None, self._rng))
                continue
            if not follow:
                return

    # --- Auditors -------------------------------------------------------------------

    def read_log(self, after: int = 0, *, page: int = LOG_PAGE_DEFAULT) -> Iterator[a.LogEvent]:
        """Every event after a position, in order, a page at a time, to the end."""
        position = after
        while True:
            call = calls.query("/v1/log", after=position, limit=page)
            response = self.send(call)
            lines = response.content.splitlines()
            for line in lines:
                event = msgspec.json.decode(line, type=a.LogEvent)
                position = event.position
                yield event
            if len(lines) < page:
                return

    def replay_member(
        self,
        member_id: str,
        *,
        as_of: datetime | None = None,
        at_position: int | None = None,
        rulebook: str | None = None,
    ) -> dict[str, Any]:
        """A member's figures folded from the log itself (slow: it reads the log)."""
        call = calls.query(
            "/v1/replay",
            member_id=member_id,
            as_of=as_of,
            at_position=at_position,
            rulebook=rulebook,
        )
        answer: dict[str, Any] = self._answer(call, dict[str, Any])
        return answer

    def get_tree_head(self) -> a.TreeHead:
        answer: a.TreeHead = self._answer(calls.query("/v1/audit/tree-head"), a.TreeHead)
        return answer

    def list_tree_heads(self, *, limit: int = 50, cursor: str | None = None) -> a.TreeHeadPage:
        """A page of the signed heads the server kept, newest first."""
        call = calls.query("/v1/audit/tree-heads", limit=limit, cursor=cursor)
        answer: a.TreeHeadPage = self._answer(call, a.TreeHeadPage)
        return answer

    def get_inclusion_proof(self, position: int, tree_size: int) -> a.InclusionProof:
        call = calls.query("/v1/audit/inclusion", position=position, tree_size=tree_size)
        answer: a.InclusionProof = self._answer(call, a.InclusionProof)
        return answer

    def get_consistency_proof(self, first: int, second: int) -> a.ConsistencyProof:
        call = calls.query("/v1/audit/consistency", first=first, second=second)
        answer: a.ConsistencyProof = self._answer(call, a.ConsistencyProof)
        return answer

    def get_public_key(self) -> a.PublicKey:
        answer: a.PublicKey = self._answer(calls.query("/v1/audit/public-key"), a.PublicKey)
        return answer

    def compare_rulebooks(
        self,
        rulebook: str,
        *,
        base: str | None = None,
        as_of: datetime | None = None,
        min_position: int | None = None,
    ) -> a.WhatIfAnswer:
        """Every seller under ``rulebook`` against ``base`` (default the server's)."""
        return self._figure(
            "/v1/whatif",
            a.WhatIfAnswer,
            rulebook=rulebook,
            base=base,
            as_of=as_of,
            min_position=min_position,
        )

    # --- Operations -----------------------------------------------------------------

    def get_health(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._answer(calls.query("/healthz"), dict[str, Any])
        return answer

    def get_readiness(self) -> dict[str, Any]:
        """Readiness; a server that is not ready raises ``Unavailable`` (after retries)."""
        answer: dict[str, Any] = self._answer(calls.query("/readyz"), dict[str, Any])
        return answer

    def get_metrics(self) -> str:
        response = self.send(calls.query("/metrics"))
        return response.text

    def get_caller(self) -> a.CallerAnswer:
        """This client's key as the server knows it: its id, role and caller."""
        answer: a.CallerAnswer = self._answer(calls.query("/v1/me"), a.CallerAnswer)
        return answer

    def get_operations_status(self) -> a.OperationsStatusAnswer:
        """What an operator watches: lags, deadlines due, keys, refusals (admin keys)."""
        answer: a.OperationsStatusAnswer = self._answer(
            calls.query("/v1/operations/status"), a.OperationsStatusAnswer
        )
        return answer

    def ping(self, body: dict[str, Any] | None = None) -> None:
        """Check that this key may append and its requests arrive."""
        self.send(calls.post("/v1/ping", body or {}))

    def run_deadlines(self, now: datetime) -> a.DeadlineRun:
        call = calls.post("/v1/deadlines/run", {"now": now.isoformat()})
        answer: a.DeadlineRun = self._answer(call, a.DeadlineRun)
        return answer
