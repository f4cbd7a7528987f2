"""Lambda's SQS event source mapping: a poller that receives a queue's messages, invokes the
function synchronously with them, and deletes what it handled.

AWS's rules kept here (Lambda developer guide, "Using Lambda with Amazon SQS" and
CreateEventSourceMapping):
- A mapping is refused when the queue's visibility timeout is shorter than the function's
  timeout: "Queue visibility timeout: {v} seconds is less than Function timeout: {t} seconds"
  (InvalidParameterValueException).
- The function's execution role must allow sqs:ReceiveMessage, sqs:DeleteMessage and
  sqs:GetQueueAttributes on the queue ("Lambda needs the following permissions to manage
  messages in your Amazon SQS queue"); the poller calls them as that role, so the IAM report
  counts them and a role without them is a denial.
- A batch the function answered: deleted, except the messages named in `batchItemFailures`
  (FunctionResponseTypes ReportBatchItemFailures). An error, a timeout or a crash: none is
  deleted; the batch comes back after the visibility timeout, and moto's redrive policy moves a
  message past maxReceiveCount to the dead-letter queue.
- Messages delayed by DelaySeconds are not received before their delay (moto's queue).
- Batches run side by side: "When messages are available, Lambda starts processing five
  batches at a time with five concurrent invocations of your function. If messages are still
  available, Lambda increases the number of processes that are reading batches by up to 300
  more instances per minute" (services-sqs-scaling): five at first, one more every 0.2 s while
  every slot is busy and messages wait, back to five when the queue is quiet. A single poller
  hid a real hazard: a check waiting behind another check's long retirement let its action
  expire.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from moto.sqs.models import sqs_backends

ACCOUNT = "123456789012"
FIRST_BATCHES = 5  # concurrent batches when messages arrive
MAX_BATCHES = 1000  # "The maximum number of batches that an event source mapping can process simultaneously"
RAMP_PER_SECOND = 5  # "up to 300 more instances per minute"


class MappingError(Exception):
    """CreateEventSourceMapping's InvalidParameterValueException."""


class SqsSource:
    def __init__(self, cloud: Any, function: str, queue: str, batch_size: int = 1):
        self.cloud = cloud
        self.function = function
        self.queue = queue
        self.batch_size = batch_size
        self.stopped = threading.Event()
        fn = cloud.lambdas.functions.get(function)
        if fn is None:
            raise MappingError(f"Function not found: {function}")
        if not 1 <= batch_size <= 10:
            raise MappingError("BatchSize must be between 1 and 10 for a standard queue without a batching window")
        self.fn = fn
        self.role_key = fn.env.get("AWS_ACCESS_KEY_ID", "")
        q = self.backend().get_queue(queue)
        self.arn = q.queue_arn
        if int(q.visibility_timeout) < fn.timeout:
            raise MappingError(f"Queue visibility timeout: {int(q.visibility_timeout)} seconds is less than "
                               f"Function timeout: {int(fn.timeout)} seconds")
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
            ok, why = self.allowed(action)
            if not ok:
                raise MappingError(f"The provided execution role does not have permissions to call "
                                   f"{action.split(':')[1]} on SQS ({why})")

    def backend(self):
        return sqs_backends[ACCOUNT][self.cloud.region]

    def allowed(self, action: str) -> tuple[bool, str]:
        return self.cloud.iam.allows(self.role_key, action, self.arn, caller=f"lambda:{self.function}")

    def start(self) -> None:
        threading.Thread(target=self._poll, daemon=True, name=f"sqs-source-{self.function}").start()

    def _poll(self) -> None:
        inflight = [0]
        lock = threading.Lock()
        busy_since: float | None = None
        while not self.stopped.is_set() and not self.cloud.stopping.is_set():
            limit = FIRST_BATCHES if busy_since is None else \
                min(MAX_BATCHES, FIRST_BATCHES + int((time.time() - busy_since) * RAMP_PER_SECOND))
            with lock:
                full = inflight[0] >= limit
            if full:
                busy_since = busy_since or time.time()
                time.sleep(0.05)
                continue
            ok, _ = self.allowed("sqs:ReceiveMessage")
            if not ok:
                time.sleep(1.0)
                continue
            q = self.backend().get_queue(self.queue)
            msgs = self.backend().receive_message(self.queue, self.batch_size, 1, int(q.visibility_timeout))
            if not msgs:
                busy_since = None  # quiet: back to five
                continue
            with lock:
                inflight[0] += 1

            def run(msgs: list[Any] = msgs) -> None:
                try:
                    self._batch(msgs)
                finally:
                    with lock:
                        inflight[0] -= 1

            threading.Thread(target=run, daemon=True).start()

    def _batch(self, msgs: list[Any]) -> None:
        records = [self._record(m) for m in msgs]
        self.cloud.record("sqs-batch", function=self.function, queue=self.queue,
                          messages=[r["messageId"] for r in records])
        result, body = self.cloud.lambdas.invoke_sync(self.function, json.dumps({"Records": records}).encode())
        if result != "ok":
            return  # back after the visibility timeout
        failed = {f.get("itemIdentifier") for f in (body or {}).get("batchItemFailures") or []} \
            if isinstance(body, dict) else set()
        for m in msgs:
            if m.id not in failed and self.allowed("sqs:DeleteMessage")[0]:
                self.backend().delete_message(self.queue, m.receipt_handle)

    def _record(self, m: Any) -> dict[str, Any]:
        return {
            "messageId": m.id, "receiptHandle": m.receipt_handle, "body": m.body,
            "attributes": {"ApproximateReceiveCount": str(m.approximate_receive_count),
                           "SentTimestamp": str(m.sent_timestamp), "SenderId": ACCOUNT,
                           "ApproximateFirstReceiveTimestamp": str(m.approximate_first_receive_timestamp)},
            "messageAttributes": {}, "md5OfBody": m.body_md5, "eventSource": "aws:sqs",
            "eventSourceARN": self.arn, "awsRegion": self.cloud.region,
        }

