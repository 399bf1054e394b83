"""The Tempest port (scenarios/glance/tempest/) against the real Keystone + Glance testbed.

Marked `openstack` (see tests/test_openstack.py: without a testbed these skip, or fail under
SCENARIO_RUNNER_REQUIRE_OPENSTACK=1). One run of the whole port: every ported test passes, each JUnit
testsuite bears the Tempest test's own name, the credentials are made and logged in once per run (one
POST /v3/auth/tokens per credential), and nothing named with the run's run_id is left behind: no
image, metadefs namespace, project or user.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from test_openstack import AUTH_URL, IMAGE_URL, admin_token, run, workspace  # noqa: F401 (fixtures)

pytestmark = pytest.mark.openstack

# Every Tempest test the port has, by Tempest class ("<module>.<Class>") and method ("<method>[id-…,attrs]"):
# one scenario file per class (named tempest.api.image.v2.<module>.<Class>), one `tests:` entry per method,
# so the JUnit testsuite is "tempest.api.image.v2.<module>.<Class> :: <method>[…]". Checked against Tempest
# 47.0.0's source: module, class, method, idempotent id and attributes (as testtools sorts them).
PORTED: dict[str, tuple[str, ...]] = {
    "admin.test_image_task.ImageTaskCreate": (
        "test_task_create_fake_image_location[id-ad6450c6-7060-4ee7-a2d1-41c2604b446c,negative]",
    ),
    "admin.test_images.BasicOperationsImagesAdminTest": (
        "test_create_image_owner_param[id-646a6eaa-135f-4493-a0af-12583021224e]",
        "test_list_public_image[id-f6ab4aa0-035e-4664-9f2d-c57c6df50605]",
        "test_update_image_owner_param[id-525ba546-10ef-4aad-bba1-1858095ce553]",
    ),
    "admin.test_images_metadefs_namespace_objects.MetadataNamespaceObjectsTest": (
        "test_create_update_delete_meta_namespace_objects[id-b1a3775e-3b5c-4f6a-a3b4-1ba3574ae718]",
        "test_list_meta_namespace_objects[id-a2a3615e-3b5c-3f6a-a2b1-1ba3574ae738]",
        "test_show_meta_namespace_objects[id-b1a3674e-3b4c-3f6a-a3b4-1ba3573ca768]",
    ),
    "admin.test_images_metadefs_namespace_properties.MetadataNamespacePropertiesTest": (
        "test_basic_meta_def_namespace_property[id-b1a3765e-3a5d-4f6d-a3a7-3ca3476ae768]",
    ),
    "admin.test_images_metadefs_namespace_tags.MetadataNamespaceTagsTest": (
        "test_create_list_delete_namespace_tags[id-a2a3765e-3a6d-4f6d-a3a7-3cc3476aa876]",
        "test_create_update_delete_tag[id-a2a3765e-1a2c-3f6d-a3a7-3cc3466ab875]",
    ),
    "admin.test_images_metadefs_namespaces.MetadataNamespacesTest": (
        "test_basic_metadata_definition_namespaces[id-319b765e-7f3d-4b3d-8b37-3ca3876ee768]",
    ),
    "admin.test_images_metadefs_resource_types.MetadataResourceTypesTest": (
        "test_basic_meta_def_resource_type_association[id-6f358a4e-5ef0-11e6-a795-080027d0d606]",
    ),
    "test_images.BasicOperationsImagesTest": (
        "test_deactivate_reactivate_image[id-951ebe01-969f-4ea9-9898-8a3f1f442ab0]",
        "test_delete_image[id-f848bb94-1c6e-45a4-8726-39e3a5b23535,smoke]",
        "test_register_upload_get_image_file[id-139b765e-7f3d-4b3d-8b37-3ca3876ee318,smoke]",
        "test_update_image[id-f66891a7-a35c-41a8-b590-a065c2a1caa6,smoke]",
    ),
    "test_images.ImportImagesTest": (
        "test_image_glance_direct_import[id-32ca0c20-e16f-44ac-8590-07869c9b4cc2]",
        "test_image_web_download_import[id-f6feb7a4-b04f-4706-a011-206129f83e62]",
        "test_image_glance_download_import_bad_endpoint[id-77644240-dbbe-4744-ae28-09b2ac12e218,negative]",
        "test_image_glance_download_import_bad_missing_image[id-c7edec8e-24b5-416a-9d42-b3e773bab62c,negative]",
        "test_image_glance_download_import_bad_uuid[id-36d4b546-64a2-4bb9-bdd0-ba676aa48f2c,negative]",
        "test_image_glance_download_import_success[id-8876c818-c40e-4b90-9742-31d231616305]",
        "test_remote_delete[id-44d60544-1524-42f7-8899-315301105dd8]",
        "test_remote_import[id-e04761a1-22af-42c2-b8bc-a34a3f12b585]",
    ),
    "test_images.ListSharedImagesTest": (
        "test_list_images_param_member_status[id-3fa50be4-8e38-4c02-a8db-7811bb780122]",
    ),
    "test_images.ListUserImagesTest": (
        "test_get_image_schema[id-622b925c-479f-4736-860d-adeaf13bc371]",
        "test_get_images_schema[id-25c8d7b2-df21-460f-87ac-93130bcdc684]",
        "test_list_hidden_image[id-d43f3efc-da4c-4af9-b636-868f0c6acedb]",
        "test_list_image_param_owner[id-e9a44b91-31c8-4b40-a332-e0a39ffb4dbb]",
        "test_list_images_param_container_format[id-9959ca1d-1aa7-4b7a-a1ea-0fff0499b37e]",
        "test_list_images_param_disk_format[id-4a4735a7-f22f-49b6-b0d9-66e1ef7453eb]",
        "test_list_images_param_limit[id-e914a891-3cc8-4b40-ad32-e0a39ffbddbb]",
        "test_list_images_param_min_max_size[id-4ad8c157-971a-4ba8-aa84-ed61154b1e7f]",
        "test_list_images_param_name[id-55c8f5f5-bfed-409d-a6d5-4caeda985d7b]",
        "test_list_images_param_size[id-cf1b9a48-8340-480e-af7b-fe7e17690876]",
        "test_list_images_param_sort[id-eeadce49-04e0-43b7-aec7-52535d903e7a]",
        "test_list_images_param_sort_key_dir[id-9faaa0c2-c3a5-43e1-8f61-61c54b409a49]",
        "test_list_images_param_status[id-7fc9e369-0f58-4d05-9aa5-0969e2d59d15]",
        "test_list_images_param_tag[id-aa8ac4df-cff9-418b-8d0f-dd9c67b072c9]",
        "test_list_images_param_visibility[id-7a95bb92-d99e-4b12-9718-7bc6ab73e6d2]",
        "test_list_no_params[id-1e341d7a-90a9-494c-b143-2cdf2aeb6aee]",
        "test_list_update_hidden_image[id-fdb96b81-257b-42ac-978b-ddeefa3760e4]",
    ),
    "test_images_member.ImagesMemberTest": (
        "test_get_image_member[id-a6ee18b9-4378-465e-9ad9-9a6de58a3287]",
        "test_get_image_member_schema[id-634dcc3f-f6e2-4409-b8fd-354a0bb25d83]",
        "test_get_image_members_schema[id-6ae916ef-1052-4e11-8d36-b3ae14853cbb]",
        "test_image_share_accept[id-5934c6ea-27dc-4d6e-9421-eeb5e045494a]",
        "test_image_share_reject[id-d9e83e5f-3524-4b38-a900-22abcb26e90e]",
        "test_remove_image_member[id-72989bc7-2268-48ed-af22-8821e835c914]",
    ),
    "test_images_member_negative.ImagesMemberNegativeTest": (
        "test_image_share_invalid_status[id-b79efb37-820d-4cf0-b54c-308b00cf842c,negative]",
        "test_image_share_owner_cannot_accept[id-27002f74-109e-4a37-acd0-f91cd4597967,negative]",
    ),
    "test_images_metadefs_schema.MetadataSchemaTest": (
        "test_get_metadata_namespace_schema[id-e9e44891-3cb8-3b40-a532-e0a39fea3dab]",
        "test_get_metadata_namespaces_schema[id-ffe44891-678b-3ba0-a3e2-e0a3967b3aeb]",
        "test_get_metadata_object_schema[id-dff4a891-b38b-3bf0-a3b2-e03ee67b3a3b]",
        "test_get_metadata_objects_schema[id-dee4a891-b38b-3bf0-a3b2-e03ee67b3a3c]",
        "test_get_metadata_properties_schema[id-dce4a891-b38b-3bf0-a3b2-e03ee67b3a3e]",
        "test_get_metadata_property_schema[id-dae4a891-b38b-3bf0-a3b2-e03ee67b3a3d]",
        "test_get_metadata_resource_type_schema[id-fde34891-678b-3b40-ae32-e0a3e67b6beb]",
        "test_get_metadata_resources_types_schema[id-dfe4a891-b38b-3bf0-a3b2-e03ee67b3a3a]",
        "test_get_metadata_tag_schema[id-dde4a891-b38b-3bf0-a3b2-e03ee67b3a3e]",
        "test_get_metadata_tags_schema[id-cde4a891-b38b-3bf0-a3b2-e03ee67b3a3a]",
    ),
    "test_images_negative.ImagesNegativeTest": (
        "test_create_image_reserved_property[id-e3fb7df8-2742-4143-8976-f1b26870f0a0,negative]",
        "test_delete_image_null_id[id-32248db1-ab88-4821-9604-c7c369f1f88c,negative]",
        "test_delete_non_existing_image[id-6fe40f1c-57bd-4918-89cc-8500f850f3de,negative]",
        "test_delete_protected_image[id-ab980a34-8410-40eb-872b-f264752f46e5,negative]",
        "test_get_delete_deleted_image[id-e57fc127-7ba0-4693-92d7-1d8a05ebcba9,negative]",
        "test_get_image_null_id[id-ef45000d-0a72-4781-866d-4cb7bf2562ad,negative]",
        "test_get_non_existent_image[id-668743d5-08ad-4480-b2b8-15da34f81d9f,negative]",
        "test_register_with_invalid_container_format[id-292bd310-369b-41c7-a7a3-10276ef76753,negative]",
        "test_register_with_invalid_disk_format[id-70c6040c-5a97-4111-9e13-e73665264ce1,negative]",
        "test_update_image_reserved_property[id-a0ae75d4-ce9c-4576-b823-aba04c8acabd,negative]",
    ),
    "test_images_tags.ImagesTagsTest": ("test_update_delete_tags_for_image[id-10407036-6059-4f95-a2cd-cbbbee7ed329]",),
    "test_images_tags_negative.ImagesTagsNegativeTest": (
        "test_delete_non_existing_tag[id-39c023a2-325a-433a-9eea-649bf1414b19,negative]",
        "test_update_tags_for_non_existing_image[id-8cd30f82-6f9a-4c6e-8034-c1b51fba43d9,negative]",
    ),
    "test_versions.VersionsTest": ("test_list_versions[id-659ea30a-a17c-4317-832c-0f68ed23c31d,smoke]",),
    # The classes that need the multi-store testbed (locations, cache, image server, a second worker):
    "admin.test_image_caching.ImageCachingTest": (
        "test_image_caching_cycle[id-4bf6adba-2f9f-47e9-a6d5-37f21ad4387c]",
        "test_remote_and_self_cache[id-0a6b7e10-bc30-4a41-91ff-69fb4f5e65f2]",
    ),
    "admin.test_images.ImageLocationsAdminTest": ("test_delete_locations[id-8a648de4-b745-4c28-a7b5-20de1c3da4d2]",),
    "admin.test_images.ImportCopyImagesTest": (
        "test_image_copy_image_import[id-9b3b644e-03d1-11eb-a036-fa163e2eaf49]",
    ),
    "admin.test_images.MultiStoresImagesTest": (
        "test_delete_image_from_specific_store[id-1ecec683-41d4-4470-a0df-54969ec74514]",
    ),
    "test_images.HashCalculationRemoteDeletionTest": (
        "test_hash_calculation_cancelled[id-123e4567-e89b-12d3-a456-426614174000]",
    ),
    "test_images.ImageLocationsTest": (
        "test_location_after_upload[id-58b0fadc-219d-40e1-b159-1c902cec323a]",
        "test_replace_location[id-bf6e0009-c039-4884-b498-db074caadb10]",
        "test_set_location[id-37599b8a-d5c0-4590-aee5-73878502be15]",
        "test_set_location_bad_scheme[id-a9a20396-8399-4b36-909d-564949be098f]",
        "test_set_location_with_hash[id-42d6f7db-c9f5-4bae-9e15-a90262fe445a]",
        "test_set_location_with_hash_not_matching[id-f3ce99c2-9ffb-4b9f-b2cb-876929382553]",
        "test_set_location_with_hash_second_matching[id-304c8a19-aa86-47dd-a022-ec4c7f433f1b]",
    ),
    "test_images.LocationImportTest": (
        "test_add_location_for_image_with_do_secure_hash_true[id-9ca1b69e-375e-11ee-be56-0242ac120002]",
        "test_add_location_with_do_secure_hash_false[id-b6963da4-375e-11ee-be56-0242ac120002]",
    ),
    "test_images.MultiStoresImportImagesTest": (
        "test_glance_direct_import_image_to_all_stores[id-bf04ff00-3182-47cb-833a-f1c6767b47fd]",
        "test_glance_direct_import_image_to_specific_stores[id-82fb131a-dd2b-11ea-aec7-340286b6c574]",
    ),
    "test_images.MultistoreLocationImportTest": (
        "test_add_location_for_image_with_do_secure_hash_true[id-3f84b819-0df8-4f81-af30-7c2d4e242bc9]",
        "test_add_location_with_do_secure_hash_false[id-507ecfef-9e1c-40c0-b801-64bf00a71ab2]",
    ),
    "test_images.StoreWeightTest": ("test_store_weight_order[id-c3d4e5f6-a7b8-9012-cdef-123456789012]",),
    "test_images_negative.ImportImagesNegativeTest": (
        "test_image_web_download_import_with_bad_url[id-c52f6a77-f522-4411-8dbe-9d14f2b1ba6b,negative]",
    ),
}
CREDENTIALS = ("admin", "primary", "project_reader", "alt")


def _tempest_name(suite: str) -> str:
    """A JUnit testsuite name as Tempest's test id: "CLASS :: method[…]" reads "CLASS.method[…]"."""
    return suite.replace(" :: ", ".", 1)


def _listed(url: str, key: str, token: str, field: str = "name") -> list[str]:
    resp = requests.get(url, headers={"X-Auth-Token": token, "Accept": "application/json"}, timeout=10)
    resp.raise_for_status()
    return [str(item.get(field) or "") for item in resp.json()[key]]


def test_tempest_port_passes_with_tempest_names_one_login_per_credential_and_leaves_nothing(
    workspace: Path,  # noqa: F811
    admin_token: str,  # noqa: F811
) -> None:
    run_id = "t" + uuid.uuid4().hex[:8]
    started = time.monotonic()
    code, out, err = run("run", "scenarios/glance/tempest/", "--var", f"run_id={run_id}", "--junit", "junit.xml")
    elapsed = time.monotonic() - started
    assert code == 0, out + err
    root = ET.parse(workspace / "junit.xml").getroot()
    suites = list(root.iter("testsuite"))

    # Every ported test ran and passed, under its Tempest class and method, once; a class's setup and
    # teardown (suites "CLASS :: setup" / "CLASS :: teardown") passed too.
    named = [s for s in suites if not (s.get("name") or "").startswith("fixture: ")]
    tests = [s for s in named if not (s.get("name") or "").endswith((" :: setup", " :: teardown"))]
    assert sorted(_tempest_name(s.get("name") or "") for s in tests) == sorted(
        f"tempest.api.image.v2.{cls}.{test}" for cls, tests in PORTED.items() for test in tests
    )
    assert [s.get("name") for s in tests if " :: " not in (s.get("name") or "")] == []
    for suite in named:
        cases = list(suite.iter("testcase"))
        assert cases, suite.get("name")
        for case in cases:
            assert case.find("failure") is None and case.find("error") is None, (suite.get("name"), case.get("name"))

    # One fixture set-up for the whole run, and one login per credential in it.
    assert [s.get("name") for s in suites if (s.get("name") or "").startswith("fixture: ")] == ["fixture: creds"]
    logins = [c.get("classname") for c in root.iter("testcase") if c.get("name") == "Get a Keystone token"]
    assert logins == ["fixture: creds"] * len(CREDENTIALS)
    assert any(c.get("name", "").startswith("teardown: Delete project") for c in root.iter("testcase"))

    # Nothing named with this run's run_id is left on the testbed.
    identity = AUTH_URL  # .../v3
    assert [n for n in _listed(f"{IMAGE_URL}/v2/images?limit=1000", "images", admin_token) if run_id in n] == []
    namespaces = _listed(f"{IMAGE_URL}/v2/metadefs/namespaces?limit=1000", "namespaces", admin_token, "namespace")
    assert [n for n in namespaces if run_id in n] == []
    assert [n for n in _listed(f"{identity}/projects", "projects", admin_token) if run_id in n] == []
    assert [n for n in _listed(f"{identity}/users", "users", admin_token) if run_id in n] == []
    # The whole port runs in about 80-90 s on the testbed (about 4 s of it the fixture: 3 users, 4 logins; the
    # location, import, copy and cache tests wait for Glance's tasks, the remote deletion ~12 s).
    assert elapsed < 300, f"the Tempest port took {elapsed:.0f} s"
    print(f"tempest port: {elapsed:.1f} s")
