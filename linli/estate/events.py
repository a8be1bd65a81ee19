"""Event types the estate domain emits through the outbox, and their payloads.

Payloads carry ids and numbers, never personal data: a partner that needs a
person's phone asks the API with a scope that allows it.
"""

from __future__ import annotations

from typing import Any

from linli.estate.models import Building, House

BUILDING_CREATED = "estate.building.created"
HOUSE_CREATED = "estate.house.created"
HOUSE_ARCHIVED = "estate.house.archived"
HOUSES_IMPORTED = "estate.houses.imported"  # payload: created / updated / unchanged counts
PARKING_IMPORTED = "estate.parking_spaces.imported"  # same counts
FACILITIES_IMPORTED = "estate.facilities.imported"  # same counts

# Residents domain (linli.residents.service), kept here so one module lists the estate's events.
RESIDENT_CREATED = "residents.resident.created"
RESIDENT_MOVED_IN = "residents.resident.moved_in"
RESIDENT_MOVED_OUT = "residents.resident.moved_out"
RESIDENTS_IMPORTED = "residents.residents.imported"
VEHICLE_REGISTERED = "residents.vehicle.registered"
VEHICLES_IMPORTED = "residents.vehicles.imported"
CLAIM_SUBMITTED = "residents.claim.submitted"
CLAIM_APPROVED = "residents.claim.approved"
CLAIM_REJECTED = "residents.claim.rejected"
STAFF_RECORDS_IMPORTED = "staff.records.imported"
STAFF_RECORD_CREATED = "staff.record.created"


def building_payload(building: Building) -> dict[str, Any]:
    return {
        "building_id": str(building.id),
        "community_id": str(building.community_id),
        "building_no": building.building_no,
    }


def house_payload(house: House) -> dict[str, Any]:
    return {
        "house_id": str(house.id),
        "community_id": str(house.community_id),
        "building_id": str(house.building_id),
        "unit_id": str(house.unit_id) if house.unit_id else None,
        "house_no": house.house_no,
        "building_area": str(house.building_area),
        "house_type": house.house_type.value,
        "status": house.status.value,
    }
