"""/imagine: a prompt becomes a queued job and a channel message that shows its progress."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import discord
from discord import app_commands
from discord.ext import commands

from bot.bans import refused_here
from bot.errors import answer
from bot.guild_limits import allowed_lane, lane_note
from bot.image_prompt import (
    ImagePromptError,
    fetch_image,
    image_prompt_key,
    store_image_prompt,
)
from bot.limits import LimitReached
from bot.permutations import check_job_count, expand_permutations
from bot.prompt import ParsedPrompt, PromptError, build_request, parse_prompt
from bot.rule_check import PromptRefused, prompt_texts, refuse_banned_words
from bot.services import NotServed
from bot.settings import load_defaults, read_aspect
from bot.status import cannot_post, post_status
from db.jobs import Job
from generation.contract import GenerationRequest, repeat_request

ASPECTS = [app_commands.Choice(name=ratio, value=ratio)
           for ratio in ("1:1", "3:2", "2:3", "16:9", "9:16", "4:3", "3:4", "21:9")]


class Imagine(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command()
    @app_commands.describe(prompt="what to draw; flags such as --ar 16:9 --no text go at the end",
                           aspect="the shape of the images (or --ar W:H in the prompt)",
                           model="which model draws it (default: yours, or the server's)",
                           image="an image to start from (or a Discord image link first in "
                                 "the prompt); --iw sets how much it counts")
    @app_commands.choices(aspect=ASPECTS)
    async def imagine(self, interaction: discord.Interaction, prompt: str,
                      aspect: str | None = None, model: str | None = None,
                      image: discord.Attachment | None = None) -> None:
        """Draw four images from a prompt."""
        # 1. a prompt that cannot be read is answered at once, ephemerally, creating nothing;
        #    `a {red, green} fox` is one prompt per permutation, each read before any job
        try:
            prompts = self._parse_permutations(prompt)
        except PromptError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        parsed = prompts[0]
        # 2. acknowledge within Discord's 3 seconds, before any database work
        await interaction.response.defer(ephemeral=True, thinking=True)
        if await refused_here(interaction, "/imagine"):
            return
        # 3. the server's banned words, over every permutation before any job is made; the
        #    member's and server's settings, the image prompt, the limits; then the job
        try:
            await refuse_banned_words(self.bot.services.db, interaction, prompt_texts(prompts))
            drawn = await self._request(interaction, parsed, aspect, model, image)
            request = drawn.request
            if drawn.image_url is not None:
                await self._store_image_prompt(
                    drawn.image_url, request, image.content_type if image else None)
            job, created = await self.bot.services.start_job(
                request, interaction.id, version_id=drawn.version_id, lane=drawn.lane)
        except (PromptRefused, PromptError, ImagePromptError, LimitReached,
                NotServed) as refusal:
            # In place of "thinking…": a follow-up would leave it spinning above the answer.
            await answer(interaction, str(refusal))
            return
        if not created:  # Discord retried the interaction: the job already exists
            await interaction.followup.send(f"Job {job.id} is already queued.", ephemeral=True)
            return
        await self._post_status(interaction, job, drawn)
        await self._repeats(interaction, drawn, prompts, job, (aspect, model, image))

    def _parse_permutations(self, prompt: str) -> list[ParsedPrompt]:
        names = sorted(self.bot.services.registry.models)
        prompts = [parse_prompt(text, names) for text in expand_permutations(prompt)]
        check_job_count([parsed.repeat for parsed in prompts])
        _check_one_image_prompt(prompts)
        return prompts

    async def _repeats(self, interaction: discord.Interaction, drawn: Drawn,
                       prompts: list[ParsedPrompt], first: Job, options: tuple) -> None:
        """--repeat N and permutations: each repeat of each prompt is one more job (repeats
        with later seeds), each within the member's limits. Only the first is keyed by the
        interaction: a retry finds it and makes no repeats."""
        extra = [(parsed, index) for parsed in prompts for index in range(parsed.repeat)][1:]
        drawn = drawn._replace(version_id=first.model_version_id)
        for number, (parsed, index) in enumerate(extra, start=2):
            try:
                if index == 0:  # the next permutation: its own flags, so its own request
                    drawn = await self._request(interaction, parsed, *options)
                job, _ = await self.bot.services.start_job(
                    repeat_request(drawn.request, index), None, version_id=drawn.version_id,
                    lane=drawn.lane)
            except (PromptError, LimitReached, NotServed) as refusal:
                await interaction.followup.send(
                    f"Job {number} of {len(extra) + 1} was not queued: {refusal}",
                    ephemeral=True)
                return
            await self._post_status(interaction, job, drawn)

    async def _request(self, interaction: discord.Interaction, parsed: ParsedPrompt,
                       aspect: str | None, model: str | None, image: discord.Attachment | None
                       ) -> Drawn:
        """The job's request, the image prompt's link, the routed model version and the
        lane, or PromptError (NotServed when routing finds no worker)."""
        defaults = await load_defaults(self.bot.services.db, interaction.user.id,
                                       interaction.guild_id)
        if not defaults.allows(interaction.channel_id):
            raise PromptError(f"On this server /imagine works in {defaults.where_allowed()} "
                              "(set by its admins with /settings server).")
        parsed = _with_aspect(parsed, aspect, defaults.member.get("aspect"))
        if image is not None and parsed.image_url is not None:
            raise PromptError("Give one image prompt: an attachment or a link, not both.")
        image_url = image.url if image is not None else parsed.image_url
        # A model named by the member (or their server) wins; otherwise A/B routing decides.
        chosen = model or parsed.model or defaults.model
        version = None if chosen else await self.bot.services.route()
        request = build_request(
            parsed, self.bot.services.registry, model=model,
            default_model=defaults.model or (version.model if version else None),
            image_prompt=image_prompt_key(interaction.id) if image_url else None,
            user_id=interaction.user.id, guild_id=interaction.guild_id,
            channel_id=interaction.channel_id)
        lane, note = await self._lane(request.model, parsed.lane or
                                      defaults.member.get("lane") or "fast", defaults.guild)
        return Drawn(request, image_url, version.id if version else None, lane, note)

    async def _lane(self, model: str, asked: str, guild: dict) -> tuple[str, str | None]:
        """--fast, --relax, --turbo, else the member's default (/fast, /relax), within the
        lanes the server allows (/settings server lanes); a lane no worker serves falls
        back to the nearest one served, unless the server disallows that one too. The
        member is told why their lane is not the one asked for."""
        allowed = allowed_lane(asked, guild)
        lane, served_note = await self.bot.services.lane_for(model, allowed)
        if allowed_lane(lane, guild) != lane:
            lane, served_note = allowed, None
        notes = [note for note in (lane_note(asked, allowed, guild), served_note) if note]
        return lane, " ".join(notes) or None

    async def _store_image_prompt(self, url: str, request: GenerationRequest,
                                  content_type: str | None) -> None:
        services = self.bot.services
        data = await fetch_image(url, services.image_origins)
        await store_image_prompt(services.blobs, request.parent_image, data, request.width,
                                 request.height, content_type)

    async def _post_status(self, interaction: discord.Interaction, job: Job,
                           drawn: Drawn) -> None:
        services = self.bot.services
        try:
            await post_status(self.bot, interaction.channel, job)
        except discord.HTTPException as error:  # no permission to post here, most often
            await interaction.followup.send(cannot_post(job, error), ephemeral=True)
            return
        idle = "" if await services.queue.is_served(job.model) else (
            f" No worker is drawing with {job.model} right now: it starts when one does.")
        note = f" {drawn.lane_note}" if drawn.lane_note else ""
        # A note says why the lane is not the one asked; the usual lane text would not.
        lane = "" if drawn.lane_note and job.lane == drawn.lane else _lane_text(job.lane,
                                                                                 drawn.lane)
        await interaction.followup.send(
            f"Queued as job {job.id}{lane}, seed "
            f"{job.request.seed}.{note}{idle}", ephemeral=True)


class Drawn(NamedTuple):
    """What /imagine draws for one prompt: the request, the image prompt's link, the model
    version routing chose, the lane and why the lane is not the one asked for."""

    request: GenerationRequest
    image_url: str | None
    version_id: int | None
    lane: str
    lane_note: str | None


def _lane_text(lane: str, asked: str) -> str:
    if lane == "relax" and asked != "relax":
        return " in the relax lane (today's fast GPU time is spent: it renews at 00:00 UTC)"
    if lane == "relax":
        return " in the relax lane (your choice: it saves your fast GPU time)"
    if lane == "turbo":
        return " in the turbo lane (first in line; it counts twice its GPU time)"
    return ""



def _check_one_image_prompt(prompts: list[ParsedPrompt]) -> None:
    """Permutations share the first one's image prompt, stored once at its size."""
    if len({parsed.image_url for parsed in prompts}) > 1:
        raise PromptError("Permute the words, not the image link: one /imagine has one image "
                          "prompt.")
    if prompts[0].image_url and len({(p.aspect, p.model) for p in prompts}) > 1:
        raise PromptError("With an image prompt every permutation is drawn at one size: "
                          "permute the words, not --ar or --model.")


def _with_aspect(parsed: ParsedPrompt, option: str | None, default: str | None) -> ParsedPrompt:
    """--ar in the prompt, else the aspect option, else the member's default."""
    if option is not None and parsed.aspect is not None and read_aspect(option) != parsed.aspect:
        raise PromptError(f"The aspect option says {option} but the prompt's --ar says "
                          f"{parsed.aspect[0]}:{parsed.aspect[1]}: use one of them.")
    chosen = option or (None if parsed.aspect else default)
    if chosen is None:
        return parsed
    return dataclasses.replace(parsed, aspect=read_aspect(chosen))
