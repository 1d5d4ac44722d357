"""HSDS 3.0 packages in (issue 14): the official examples (JSON and CSV), the exchange's own export round trip,
idempotent re-imports, a change that changes only itself, dry runs, malformed packages, a large directory, and the
admin's upload page."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from beds.directory_models import DirectoryLink, DirectoryListing
from beds.models import BedPool, Facility
from exchange.accounts.models import Organisation
from exchange.cli import main
from tests.conftest import Network, _empty_tables, login_page_session

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "standards" / "hsds" / "examples"


async def run_cli(database_url: str, *args: str) -> Result:
    """`refuge ...` in a thread (it runs its own event loop) on the test database."""
    environment = {"DATABASE_URL": database_url, "LEDGER_PUBLIC_KEY": ""}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=environment)


async def counts(sessionmaker: async_sessionmaker) -> dict[str, int]:
    async with sessionmaker() as session:
        return {
            table.__name__: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (Organisation, Facility, BedPool, DirectoryLink, DirectoryListing)
        }


def _set_everywhere(document: Any, key: str, value: Any) -> None:
    if isinstance(document, dict):
        if key in document:
            document[key] = value
        for child in document.values():
            _set_everywhere(child, key, value)
    elif isinstance(document, list):
        for child in document:
            _set_everywhere(child, key, value)


def shelter_example() -> dict[str, Any]:
    """The official organization example, moved to Ottawa and named as the women's shelter it could be."""
    document = json.loads((EXAMPLES / "organization_full.json").read_text())
    document["services"][0]["name"] = "Women's Shelter Ottawa"
    _set_everywhere(document, "state_province", "ON")
    _set_everywhere(document, "country", "CA")
    _set_everywhere(document, "city", "Ottawa")
    return document


def write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


async def test_official_examples_import_json_and_csv(
    database_url: str, sessionmaker: async_sessionmaker, tmp_path: Path
) -> None:
    """The examples describe a counselling service in "MyState": its organisation comes in, the service is listed in
    the report as not a housing service, and every field without a place here is named."""
    for source in (EXAMPLES / "organization_full.json", EXAMPLES / "service_full.json", EXAMPLES / "csv"):
        result = await run_cli(database_url, "import", "hsds", str(source))
        assert result.exit_code == 0, result.output
        assert "not a housing service" in result.output
        assert "not carried over: alternate_name, description, url" in result.output
        assert (await counts(sessionmaker))["Organisation"] == 1
        assert (await counts(sessionmaker))["Facility"] == 0
    # The same organisation id in all three: one organisation, linked once, and the later imports changed nothing.
    assert "organisations: 0 created, 0 updated, 1 unchanged" in result.output
    async with sessionmaker() as session:
        org = (await session.execute(select(Organisation))).scalar_one()
    assert org.name == "Example Organization Inc." and org.kind == "community"


async def test_a_shelter_imports_with_its_criteria_and_a_confidential_address(
    client: AsyncTestClient, network: Network, database_url: str, sessionmaker: async_sessionmaker, tmp_path: Path
) -> None:
    path = write(tmp_path, "shelter.json", shelter_example())
    result = await run_cli(database_url, "import", "hsds", str(path))
    assert result.exit_code == 0, result.output
    assert "+ created facility Women's Shelter Ottawa" in result.output
    assert "no bed count in HSDS" in result.output
    async with sessionmaker() as session:
        facility = (await session.execute(select(Facility).where(Facility.city == "Ottawa"))).scalar_one()
        pools = (await session.execute(select(BedPool).where(BedPool.facility_id == facility.id))).scalars().all()
        listing = await session.get(DirectoryListing, facility.id)
    assert (facility.kind, facility.province, facility.genders) == ("vaw_shelter", "ON", "women")
    assert (facility.age_min, facility.age_max) == (12, 100)
    assert facility.languages == "ur" and facility.accessible
    assert facility.address == "1-30 Main Street, MyVillage, ABC 1234"
    assert facility.intake_phone == "+44 1234 234567"
    assert [(str(p.profile), p.capacity) for p in pools] == [("women", 0)]
    assert listing is not None and not listing.address_public
    # The directory shows it at city precision: no street, postal code, phone or point.
    export = await client.get("/api/v1/hsds/services", params={"full": "true"}, headers=network["police"].headers)
    assert "Women's Shelter Ottawa" in export.text
    for secret in ("1-30 Main Street", "ABC 1234", "234567", "MyVillage"):
        assert secret not in export.text
    # The board lists it to everyone, without its address.
    board = await client.get("/api/v1/facilities", params={"city": "Ottawa"}, headers=network["police"].headers)
    assert [f["name"] for f in board.json()] == ["Women's Shelter Ottawa"]
    assert "address" not in board.json()[0]


async def test_reimport_changes_nothing_and_a_change_changes_only_itself(
    database_url: str, sessionmaker: async_sessionmaker, tmp_path: Path
) -> None:
    document = shelter_example()
    first = await run_cli(database_url, "import", "hsds", str(write(tmp_path, "a.json", document)))
    assert first.exit_code == 0, first.output
    async with sessionmaker() as session:
        before = (await session.execute(select(Facility))).scalar_one().model_dump()
    before_counts = await counts(sessionmaker)

    again = await run_cli(database_url, "import", "hsds", str(write(tmp_path, "b.json", document)))
    assert again.exit_code == 0, again.output
    assert "facilities: 0 created, 0 updated, 1 unchanged" in again.output
    assert "organisations: 0 created, 0 updated, 1 unchanged" in again.output
    async with sessionmaker() as session:
        assert (await session.execute(select(Facility))).scalar_one().model_dump() == before
    assert await counts(sessionmaker) == before_counts

    changed = copy.deepcopy(document)
    changed["services"][0]["minimum_age"] = 16
    third = await run_cli(database_url, "import", "hsds", str(write(tmp_path, "c.json", changed)))
    assert third.exit_code == 0, third.output
    assert "~ updated facility Women's Shelter Ottawa (age_min)" in third.output
    async with sessionmaker() as session:
        after = (await session.execute(select(Facility))).scalar_one().model_dump()
    assert after["age_min"] == 16
    assert {k for k in after if after[k] != before[k]} == {"age_min", "updated_at"}
    assert await counts(sessionmaker) == before_counts


async def test_a_dry_run_prints_the_changes_and_writes_nothing(
    database_url: str, sessionmaker: async_sessionmaker, tmp_path: Path
) -> None:
    empty = await counts(sessionmaker)
    result = await run_cli(
        database_url, "import", "hsds", "--dry-run", str(write(tmp_path, "s.json", shelter_example()))
    )
    assert result.exit_code == 0, result.output
    assert "+ created organisation Example Organization Inc." in result.output
    assert "+ created facility Women's Shelter Ottawa" in result.output
    assert "dry run: nothing was written" in result.output
    assert await counts(sessionmaker) == empty


async def test_a_malformed_package_is_refused_with_each_error_and_writes_nothing(
    database_url: str, sessionmaker: async_sessionmaker, tmp_path: Path
) -> None:
    good = shelter_example()
    bad = {
        "id": "5a1c4d07-0a47-4c1e-9d4f-6f0b7e0c0a01",
        "name": "",
        "description": "x",
        "services": [
            {
                "id": "5a1c4d07-0a47-4c1e-9d4f-6f0b7e0c0a02",
                "name": "Night Shelter",
                "status": "open",
                "minimum_age": "twelve",
                "service_at_locations": [{"id": "5a1c4d07-0a47-4c1e-9d4f-6f0b7e0c0a03", "location_id": "nowhere"}],
            }
        ],
    }
    path = write(tmp_path, "mixed.json", [good, bad])
    empty = await counts(sessionmaker)
    result = await run_cli(database_url, "import", "hsds", str(path))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: mixed.json:[1].name: required, missing or empty",
        "error: mixed.json:[1].services[0].minimum_age: must be a number, not 'twelve'",
        "error: mixed.json:[1].services[0].status: must be one of active, inactive, defunct, temporarily closed",
        "error: mixed.json:[1].services[0].service_at_locations[0].location_id: names no location of the package",
    ]
    assert "nothing was written" in result.output
    assert await counts(sessionmaker) == empty
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": ')
    result = await run_cli(database_url, "import", "hsds", str(broken))
    assert result.exit_code == 1 and "error: broken.json: not valid JSON" in result.output
    assert await counts(sessionmaker) == empty
    # A small archive that unpacks to more than the limit is refused before any member is read.
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for n in range(3):
            archive.writestr(f"../../services{n}.csv", b"\0" * (40 * 1024 * 1024))
    assert bomb.stat().st_size < 1024 * 1024
    result = await run_cli(database_url, "import", "hsds", str(bomb))
    assert result.exit_code == 1 and "error: bomb.zip: more than 100 MB once unpacked" in result.output
    assert await counts(sessionmaker) == empty


async def test_round_trip_into_a_fresh_database_gives_the_same_directory(
    client: AsyncTestClient,
    network: Network,
    database_url: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker,
    tmp_path: Path,
) -> None:
    """Export the network's package, empty the database, import it (the CSV form in its zip): the directory is the
    same, ids included; a second import changes nothing."""
    h = network["coordinator"].headers
    exported = (await client.get("/api/v1/hsds/organizations", params={"full_service": "true"}, headers=h)).json()
    package = tmp_path / "directory.zip"
    package.write_bytes((await client.get("/api/v1/hsds/package.zip", headers=h)).content)
    (tmp_path / "directory.json").write_text(json.dumps(exported["contents"]))
    await _empty_tables(engine)

    result = await run_cli(database_url, "import", "hsds", str(package))
    assert result.exit_code == 0, result.output
    assert "facilities: 2 created" in result.output
    assert "not imported as is" not in result.output  # everything of its own export fits
    token = await _admin_token(sessionmaker)
    again = (await client.get("/api/v1/hsds/organizations", params={"full_service": "true"}, headers=token)).json()
    assert _without_times(again) == _without_times(exported)

    # The nested JSON form of the same directory is the same records: nothing to change.
    result = await run_cli(database_url, "import", "hsds", str(tmp_path / "directory.json"))
    assert result.exit_code == 0, result.output
    assert "facilities: 0 created, 0 updated, 2 unchanged" in result.output


async def test_importing_the_exchanges_own_export_into_the_same_database_changes_nothing(
    client: AsyncTestClient, network: Network, database_url: str, sessionmaker: async_sessionmaker, tmp_path: Path
) -> None:
    """An admin downloads the package and uploads it back: every facility is found under the id it was published
    with (no copy with every bed free), and no confidential address is erased by the export's city-only record."""
    package = tmp_path / "directory.zip"
    package.write_bytes((await client.get("/api/v1/hsds/package.zip", headers=network["coordinator"].headers)).content)
    before = await counts(sessionmaker)
    async with sessionmaker() as session:
        addresses = dict((await session.execute(select(Facility.id, Facility.address))).all())
    for _ in range(2):
        result = await run_cli(database_url, "import", "hsds", str(package))
        assert result.exit_code == 0, result.output
        assert "facilities: 0 created, 0 updated, 2 unchanged" in result.output, result.output
        after = await counts(sessionmaker)
        assert {k: after[k] for k in ("Organisation", "Facility", "BedPool")} == {
            k: before[k] for k in ("Organisation", "Facility", "BedPool")
        }
    async with sessionmaker() as session:
        assert dict((await session.execute(select(Facility.id, Facility.address))).all()) == addresses


def _without_times(page: dict[str, Any]) -> dict[str, Any]:
    page = copy.deepcopy(page)
    for org in page["contents"]:
        for service in org["services"]:
            service.pop("last_modified")
    return page


async def _admin_token(sessionmaker: async_sessionmaker) -> dict[str, str]:
    from exchange.accounts.models import Role, User
    from exchange.accounts.service import issue_token
    from tests.conftest import PASSWORD_HASH

    async with sessionmaker() as session:
        org = Organisation(name="Reading coalition", kind="coalition")
        session.add(org)
        await session.flush()
        user = User(username="reader", password_hash=PASSWORD_HASH, organisation_id=org.id, roles=[Role.COORDINATOR])
        session.add(user)
        await session.commit()
        return {"Authorization": "Bearer " + await issue_token(session, user)}


def generated_directory(services: int, per_organisation: int = 10) -> list[dict[str, Any]]:
    provinces = ["QC", "ON", "BC", "AB", "MB", "NS"]
    organisations = []
    for o in range(services // per_organisation):
        org_id = str(uuid.UUID(int=o + 1))
        own = []
        for s in range(per_organisation):
            n = o * per_organisation + s
            location_id = str(uuid.UUID(int=10**7 + n))
            own.append(
                {
                    "id": str(uuid.UUID(int=10**6 + n)),
                    "name": f"Night Shelter {n}",
                    "status": "active",
                    "minimum_age": 18,
                    "languages": [{"id": str(uuid.UUID(int=10**8 + n)), "code": "fr" if n % 2 else "en"}],
                    "service_at_locations": [
                        {
                            "id": str(uuid.UUID(int=10**9 + n)),
                            "location": {
                                "id": location_id,
                                "location_type": "physical",
                                "addresses": [
                                    {
                                        "id": str(uuid.UUID(int=10**10 + n)),
                                        "address_1": f"{n} Main Street",
                                        "city": f"City {n % 40}",
                                        "state_province": provinces[n % len(provinces)],
                                        "postal_code": "A1A 1A1",
                                        "country": "CA",
                                        "address_type": "physical",
                                    }
                                ],
                            },
                        }
                    ],
                }
            )
        organisations.append({"id": org_id, "name": f"Directory Org {o}", "description": "x", "services": own})
    return organisations


async def test_a_large_directory_imports_in_one_pass(
    database_url: str, sessionmaker: async_sessionmaker, tmp_path: Path
) -> None:
    path = write(tmp_path, "large.json", generated_directory(3000))
    started = time.monotonic()
    result = await run_cli(database_url, "import", "hsds", str(path))
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "facilities: 3000 created" in result.output
    assert result.stderr.startswith("facilities")  # the progress bar (its label alone when not on a terminal)
    found = await counts(sessionmaker)
    assert (found["Organisation"], found["Facility"], found["BedPool"]) == (300, 3000, 3000)
    assert elapsed < 120, elapsed


async def test_the_admin_page_imports_an_upload(
    client: AsyncTestClient, network: Network, sessionmaker: async_sessionmaker
) -> None:
    body = json.dumps(shelter_example()).encode()
    files = {"package": ("shelter.json", body, "application/json")}
    assert (await login_page_session(client, "police")).status_code == 303
    token = client.cookies.get("csrftoken")
    refused = await client.post("/admin/directory/import", files=files, headers={"x-csrftoken": token})
    assert refused.status_code == 403
    client.cookies.clear()

    assert (await login_page_session(client, "admin")).status_code == 303
    token = client.cookies.get("csrftoken")
    page = await client.get("/admin/directory")
    assert page.status_code == 200 and 'type="file"' in page.text and "<progress" in page.text
    without_csrf = await client.post("/admin/directory/import", files=files)
    assert without_csrf.status_code == 403
    dry = await client.post(
        "/admin/directory/import", files=files, data={"dry_run": "1"}, headers={"x-csrftoken": token}
    )
    assert dry.status_code == 200, dry.text
    assert "Dry run: nothing was written" in dry.text and "Women&#39;s Shelter Ottawa" in dry.text
    assert (await counts(sessionmaker))["Facility"] == 2
    done = await client.post(
        "/admin/directory/import", files=files, headers={"x-csrftoken": token, "HX-Request": "true"}
    )
    assert done.status_code == 200 and "Imported" in done.text and "<html" not in done.text
    assert (await counts(sessionmaker))["Facility"] == 3
    bad = {"package": ("bad.json", b'{"id": "x", "name": "", "description": ""}', "application/json")}
    refused_package = await client.post("/admin/directory/import", files=bad, headers={"x-csrftoken": token})
    assert refused_package.status_code == 422
    assert "bad.json.name" in refused_package.text and "nothing was written" in refused_package.text
    # From the page's script, the same list replaces the report (htmx swaps only a successful answer).
    hx_refused = await client.post(
        "/admin/directory/import", files=bad, headers={"x-csrftoken": token, "HX-Request": "true"}
    )
    assert hx_refused.status_code == 200 and "bad.json.name" in hx_refused.text and "<html" not in hx_refused.text
    assert (await counts(sessionmaker))["Facility"] == 3


def _board(facilities: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the board shows of each facility, without its ids, counts of the moment or update time."""
    return sorted(
        (
            f["name"],
            f["kind"],
            f["province"],
            f["city"],
            f["area"],
            f["security_level"],
            json.dumps(f["criteria"], sort_keys=True),
            tuple(sorted((p["profile"], p["capacity"]) for p in f["pools"])),
        )
        for f in facilities
    )


async def test_the_demo_network_exports_safely_and_reimports_with_the_same_board(
    client: AsyncTestClient, database_url: str, engine: AsyncEngine, sessionmaker: async_sessionmaker, tmp_path: Path
) -> None:
    from exchange.demo.network import DemoNetwork, add_facilities, add_organisations
    from tests.test_hsds_export import assert_valid

    async with sessionmaker() as session:
        demo = DemoNetwork()
        await add_organisations(session, demo)
        await add_facilities(session, demo)
    secrets = [value for f in demo.facilities for value in (f.address, f.intake_phone, f.oncall_email)]
    h = await _admin_token(sessionmaker)
    services = await client.get("/api/v1/hsds/services", params={"full": "true", "per_page": 500}, headers=h)
    assert services.json()["total_items"] == len(demo.facilities)
    assert_valid("service.json", services.json()["contents"])
    organizations = await client.get("/api/v1/hsds/organizations", params={"full_service": "true"}, headers=h)
    have = await client.get("/api/v1/edxl/have", headers=h)
    package = (await client.get("/api/v1/hsds/package.zip", headers=h)).content
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        tables = [archive.read(name).decode() for name in archive.namelist()]
    for body in [services.text, organizations.text, have.text, *tables]:
        leaked = [secret for secret in secrets if secret in body]
        assert not leaked, leaked[:3]
    assert all("latitude" not in s["service_at_locations"][0]["location"] for s in services.json()["contents"])
    board = _board((await client.get("/api/v1/facilities", headers=h)).json())

    await _empty_tables(engine)
    (tmp_path / "demo.zip").write_bytes(package)
    result = await run_cli(database_url, "import", "hsds", str(tmp_path / "demo.zip"))
    assert result.exit_code == 0, result.output
    assert f"facilities: {len(demo.facilities)} created" in result.output
    h = await _admin_token(sessionmaker)
    assert _board((await client.get("/api/v1/facilities", headers=h)).json()) == board


async def test_a_partner_hotel_imported_with_a_public_address_is_published_by_city_only(
    client: AsyncTestClient, network: Network, database_url: str, sessionmaker: async_sessionmaker, tmp_path: Path
) -> None:
    """Its own directory publishes the hotel's address; this exchange does not: beside "partner hotel" it would say
    where victims sleep tonight."""
    document = shelter_example()
    document["services"][0]["name"] = "Partner Hotel Ottawa"
    _set_everywhere(document, "latitude", 45.42)
    _set_everywhere(document, "longitude", -75.69)
    result = await run_cli(database_url, "import", "hsds", str(write(tmp_path, "hotel.json", document)))
    assert result.exit_code == 0, result.output
    async with sessionmaker() as session:
        facility = (await session.execute(select(Facility).where(Facility.city == "Ottawa"))).scalar_one()
        listing = await session.get(DirectoryListing, facility.id)
    assert facility.kind == "partner_hotel" and not listing.address_public
    export = await client.get("/api/v1/hsds/services", params={"full": "true"}, headers=network["police"].headers)
    assert "1-30 Main Street" not in export.text and "ABC 1234" not in export.text and "45.42" not in export.text
    hotel = next(s for s in export.json()["contents"] if s["name"] == "Partner Hotel Ottawa")
    assert hotel["service_at_locations"][0]["location"]["addresses"][0]["city"] == "Ottawa"
    assert "234567" not in export.text  # its intake phone stays confidential


def test_foreign_words_map_onto_kinds_criteria_and_languages() -> None:
    """A directory that is not ours: kind from the name, criteria from plain eligibility words, languages by ISO
    code or name, accessibility from its description, Québec by its French name; the rest is reported."""
    from beds.directory import plan_import, read_package

    document = shelter_example()
    service = document["services"][0]
    service["name"] = "Youth Emergency Housing"
    service["eligibility_description"] = "Boys and girls 16 to 18. Must be sober. Children welcome with a parent."
    service["minimum_age"], service["maximum_age"] = 16, 18
    service["languages"] = [
        {"id": str(uuid.uuid4()), "code": "fra"},
        {"id": str(uuid.uuid4()), "name": "English"},
        {"id": str(uuid.uuid4()), "code": "xx-unknown-tongue"},
    ]
    _set_everywhere(document, "state_province", "Québec")
    plan = plan_import(read_package({"youth.json": json.dumps(document).encode()}))
    [facility] = plan.facilities
    fields = facility.fields
    assert (fields["kind"], fields["province"], fields["age_min"], fields["age_max"]) == ("youth", "QC", 16, 18)
    assert fields["genders"] == "women,men"
    assert fields["sobriety_required"] and fields["children_accompanied"]
    assert fields["languages"] == "fr,en,ur"
    assert fields["accessible"]  # "Wheelchair access is possible on all levels."
    assert facility.pools == (("youth", 0),)
    assert not facility.listing["address_public"]
    messages = [note.message for note in plan.notes]
    assert any("language 'xx-unknown-tongue' not recognised" in m for m in messages)
    assert any(m.startswith("read as: children_accompanied=True, genders=women,men") for m in messages)
