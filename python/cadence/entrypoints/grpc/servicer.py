"""cadence.v1.InferenceService on top of the serving core.

The servicer is a thin translation: validation, defaults, chat rendering, deltas and
context-length errors are the serving core's (``cadence.serving``), shared with the HTTP
server; its typed errors become gRPC status codes here.
"""

from __future__ import annotations

import functools
import hmac
import inspect
from collections.abc import AsyncIterator
from typing import Any

import grpc

import cadence
from cadence.engine.llm_engine import check_cache_salt
from cadence.entrypoints.grpc import convert
from cadence.logger import get_logger
from cadence.outputs import RequestOutput
from cadence.serving.chat import render_messages
from cadence.serving.context import ServingContext
from cadence.serving.errors import (
    InvalidParameter,
    NotFound,
    Overloaded,
    ServingError,
    Unavailable,
    as_serving_error,
)
from cadence.serving.request_building import (
    BeamSearchOptions,
    PromptInput,
    make_beam_search_params,
    make_sampling_params,
    resolve_max_tokens,
)
from cadence.serving.streams import FinalOutput, follow_streams, new_id, submit_prompts
from cadence.v1 import inference_pb2, inference_pb2_grpc

logger = get_logger(__name__)

_STATUS_CODES: dict[type[ServingError], grpc.StatusCode] = {
    InvalidParameter: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}
_REQUEST_FIELDS = frozenset((*convert.SAMPLING_FIELDS, "cache_salt"))
_BEAM_FIELDS = frozenset(field.name for field in inference_pb2.BeamSearchRequest.DESCRIPTOR.fields)


def status_of(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The gRPC status for an error raised while serving a call."""
    serving_error = as_serving_error(error)
    if serving_error is not None:
        code = _STATUS_CODES.get(type(serving_error), grpc.StatusCode.INVALID_ARGUMENT)
        return code, serving_error.message
    logger.error("internal error in a gRPC call", exc_info=error)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}"


def _rpc(method):
    """Checks the API key, then runs the (unary or server-streaming) method with every
    error turned into a status."""

    async def fail(self: InferenceServicer, context: grpc.aio.ServicerContext, error: Exception):
        code, message = status_of(error)
        await context.abort(code, message)

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self, request, context):
            await self._authorize(context)
            try:
                async for response in method(self, request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as error:  # noqa: BLE001 - every error becomes a status
                await fail(self, context, error)

        return stream_wrapper

    @functools.wraps(method)
    async def unary_wrapper(self, request, context):
        await self._authorize(context)
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # noqa: BLE001 - every error becomes a status
            await fail(self, context, error)

    return unary_wrapper


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    """Serves one model. ``api_key``: calls need ``authorization: Bearer <key>`` metadata."""

    def __init__(self, context: ServingContext, api_key: str | None = None) -> None:
        self.ctx = context
        self._expected_authorization = f"Bearer {api_key}".encode() if api_key else None

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        if self._expected_authorization is None:
            return
        metadata = dict(context.invocation_metadata() or ())
        given = str(metadata.get("authorization", "")).encode()
        if not hmac.compare_digest(given, self._expected_authorization):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or wrong API key: send metadata 'authorization: Bearer <key>'",
            )

    # ------------------------------------------------------------------ prompts

    async def _prompt_of(self, request: Any) -> PromptInput:
        kind = request.WhichOneof("prompt")
        if kind == "text":
            if not request.text:
                raise InvalidParameter("text", "text must not be empty")
            return PromptInput(request.text, await self.ctx.text.encode(request.text))
        if kind == "token_ids":
            token_ids = list(request.token_ids.ids)
            if not token_ids:
                raise InvalidParameter("token_ids", "token_ids must not be empty")
            self.ctx.check_token_ids(token_ids, "token_ids")
            return PromptInput(None, token_ids)
        raise InvalidParameter("prompt", "give the prompt as text or token_ids")

    async def _chat_prompt(self, request: inference_pb2.ChatRequest) -> PromptInput:
        if not request.messages:
            raise InvalidParameter("messages", "messages must not be empty")
        messages = []
        for message in request.messages:
            entry: dict[str, Any] = {"role": message.role, "content": message.content}
            if message.HasField("name"):
                entry["name"] = message.name
            messages.append(entry)
        return await render_messages(
            self.ctx,
            messages,
            request.chat_template if request.HasField("chat_template") else None,
            convert.struct_to_dict(request.chat_template_kwargs),
            request.add_generation_prompt if request.HasField("add_generation_prompt") else True,
            request.continue_final_message,
        )

    # ------------------------------------------------------------------ generation

    @_rpc
    async def Generate(self, request, context) -> AsyncIterator[inference_pb2.GenerateResponse]:
        self.ctx.check_model(request.model or None)
        prompt = await self._prompt_of(request)
        salt = _cache_salt(request)
        async for response in self._generate(
            prompt, request.sampling, request.stream, "prompt", salt
        ):
            yield response

    @_rpc
    async def Chat(self, request, context) -> AsyncIterator[inference_pb2.GenerateResponse]:
        self.ctx.check_model(request.model or None)
        prompt = await self._chat_prompt(request)
        salt = _cache_salt(request)
        async for response in self._generate(
            prompt, request.sampling, request.stream, "messages", salt
        ):
            yield response

    async def _generate(
        self, prompt: PromptInput, sampling: Any, stream: bool, where: str, cache_salt: str | None
    ) -> AsyncIterator[inference_pb2.GenerateResponse]:
        fields = convert.sampling_fields(sampling)
        fields["max_tokens"] = resolve_max_tokens(
            self.ctx, fields.get("max_tokens"), len(prompt.token_ids), None, where
        )
        params = make_sampling_params(self.ctx, fields, _REQUEST_FIELDS, {})
        request_id = new_id("grpc")
        streams, wakeup = await submit_prompts(
            self.ctx, request_id, [prompt], [params], _REQUEST_FIELDS, {}, cache_salt
        )
        final = FinalOutput()
        num_generated = 0
        async for _, delta in follow_streams(streams, wakeup):
            num_generated += sum(len(completion.token_ids) for completion in delta.outputs)
            if stream:
                yield self._response(request_id, delta, params, num_generated)
            else:
                final.add(delta)
        if not stream:
            yield self._response(request_id, final.output(), params, num_generated)

    def _response(
        self, request_id: str, output: RequestOutput, params: Any, num_generated: int
    ) -> inference_pb2.GenerateResponse:
        """A delta, or (not streaming) the whole output; usage once it finished."""
        response = inference_pb2.GenerateResponse(request_id=request_id)
        for completion in output.outputs:
            response.choices.append(convert.choice_delta(completion, params.logprobs))
        self._add_prompt_logprobs(response, output, params.prompt_logprobs)
        if output.finished:
            response.usage.CopyFrom(
                convert.usage(len(output.prompt_token_ids), num_generated, output.num_cached_tokens)
            )
        return response

    @staticmethod
    def _add_prompt_logprobs(
        response: inference_pb2.GenerateResponse, output: RequestOutput, num_top: int | None
    ) -> None:
        if output.prompt_logprobs is None or num_top is None:
            return
        for token_id, position in zip(
            output.prompt_token_ids[1:], output.prompt_logprobs[1:], strict=True
        ):
            response.prompt_logprobs.append(convert.position_logprobs(token_id, position, num_top))

    @_rpc
    async def BeamSearch(self, request, context) -> inference_pb2.BeamSearchResponse:
        self.ctx.check_model(request.model or None)
        prompt = await self._prompt_of(request)
        options = BeamSearchOptions(
            beam_width=request.beam_width,
            temperature=request.temperature,
            length_penalty=request.length_penalty if request.HasField("length_penalty") else None,
            ignore_eos=request.ignore_eos,
            include_stop_str_in_output=request.include_stop_str_in_output,
        )
        params = make_beam_search_params(
            self.ctx, options, request.max_tokens, len(prompt.token_ids), "beam_width"
        )
        resolve_max_tokens(self.ctx, params.max_tokens, len(prompt.token_ids), None, "prompt")
        request_id = new_id("grpc-beam")
        (stream,), _ = await submit_prompts(
            self.ctx, request_id, [prompt], [params], _BEAM_FIELDS, {}, _cache_salt(request)
        )
        try:
            async for output in stream:  # one BeamSearchOutput, when the search is done
                if output.finished:
                    return convert.beam_search_response(output)
        finally:
            stream.abort()
        raise Unavailable("the beam search ended without a result", "request_aborted")

    # ------------------------------------------------------------------ tokenizer, info

    @_rpc
    async def Tokenize(self, request, context) -> inference_pb2.TokenizeResponse:
        self.ctx.check_model(request.model or None)
        kind = request.WhichOneof("input")
        if kind == "text":
            add_special = (
                request.add_special_tokens if request.HasField("add_special_tokens") else True
            )
            tokens = await self.ctx.text.encode(request.text, add_special)
        elif kind == "messages":
            chat = inference_pb2.ChatRequest(
                messages=request.messages.messages,
                add_generation_prompt=(
                    request.add_generation_prompt
                    if request.HasField("add_generation_prompt")
                    else True
                ),
            )
            tokens = (await self._chat_prompt(chat)).token_ids
        else:
            raise InvalidParameter("input", "give text or messages")
        return inference_pb2.TokenizeResponse(
            token_ids=tokens, count=len(tokens), max_model_len=self.ctx.model.max_model_len
        )

    @_rpc
    async def Detokenize(self, request, context) -> inference_pb2.DetokenizeResponse:
        self.ctx.check_model(request.model or None)
        token_ids = list(request.token_ids)
        self.ctx.check_token_ids(token_ids, "token_ids")
        text = await self.ctx.text.decode(token_ids, request.skip_special_tokens)
        return inference_pb2.DetokenizeResponse(text=text)

    @_rpc
    async def GetModelInfo(self, request, context) -> inference_pb2.GetModelInfoResponse:
        model = self.ctx.model
        return inference_pb2.GetModelInfoResponse(
            name=model.model_name,
            max_model_len=model.max_model_len,
            vocab_size=model.vocab_size,
            eos_token_ids=list(model.eos_token_ids),
            default_sampling=convert.to_sampling_message(model.default_fields),
            max_beam_width=model.max_beam_width,
            server_version=cadence.__version__,
        )


def _cache_salt(request: Any) -> str | None:
    """The request's cache_salt (None when unset); one check_cache_salt refuses is
    INVALID_ARGUMENT naming it."""
    if not request.HasField("cache_salt"):
        return None
    return check_cache_salt(request.cache_salt)
