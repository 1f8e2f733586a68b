"""The pytest plugin, as a project using it sees it (run through pytester)."""

import pytest


def run(pytester, source, *args, conftest=None):
    if conftest:
        pytester.makeconftest(conftest)
    pytester.makepyfile(source)
    return pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


def test_fake_registry_serves_requests_in_process_over_http_and_https(pytester):
    result = run(
        pytester,
        """
        import requests

        def test_push_and_pull(fake_registry):
            assert fake_registry.host == "registry.test"
            assert fake_registry.url == "http://registry.test"
            image = fake_registry.push_image("team/app", "v1", layers=[b"layer"])
            for scheme in ("http", "https"):
                response = requests.get(f"{scheme}://registry.test/v2/team/app/manifests/v1")
                assert response.status_code == 200
                assert response.headers["Docker-Content-Digest"] == image.digest
            assert [r.route for r in fake_registry.requests] == ["manifest", "manifest"]

        def test_each_test_gets_a_fresh_registry(fake_registry):
            assert fake_registry.repositories() == []
            assert requests.get(fake_registry.url + "/v2/_catalog").json() == {"repositories": []}

        def test_other_hosts_are_untouched(fake_registry):
            with pytest.raises(requests.ConnectionError):
                requests.get("http://127.0.0.1:9/", timeout=2)
            assert list(fake_registry.requests) == []

        import pytest
        """,
    )
    result.assert_outcomes(passed=3)


def test_marker_passes_constructor_options(pytester):
    result = run(
        pytester,
        """
        import pytest, requests

        @pytest.mark.fake_registry(delete_enabled=False)
        def test_delete_disabled(fake_registry):
            image = fake_registry.push_image("team/app", "v1")
            response = requests.delete(f"{fake_registry.url}/v2/team/app/manifests/{image.digest}")
            assert response.status_code == 405

        @pytest.mark.fake_registry(delete_enabled=False)
        def test_on_the_socket_fixture_too(fake_registry_server):
            assert fake_registry_server.delete_enabled is False

        def test_default(fake_registry):
            assert fake_registry.delete_enabled is True
        """,
    )
    result.assert_outcomes(passed=3)


def test_config_fixtures_change_defaults_for_a_project(pytester):
    result = run(
        pytester,
        """
        import pytest, requests

        def test_host_and_options(fake_registry):
            assert fake_registry.host == "myregistry.example:5000"
            assert fake_registry.delete_enabled is False
            assert requests.get("http://myregistry.example:5000/v2/").status_code == 200

        @pytest.mark.fake_registry(delete_enabled=True)
        def test_the_marker_still_wins(fake_registry):
            assert fake_registry.delete_enabled is True
        """,
        conftest="""
        import pytest

        @pytest.fixture
        def fake_registry_options():
            return {"delete_enabled": False}

        @pytest.fixture
        def fake_registry_host():
            return "myregistry.example:5000"
        """,
    )
    result.assert_outcomes(passed=2)


def test_coexists_with_requests_mock(pytester):
    result = run(
        pytester,
        """
        import requests, requests_mock

        def test_with_the_requests_mock_fixture(fake_registry, requests_mock):
            requests_mock.get("http://other.test/hello", text="hi")
            assert requests.get("http://other.test/hello").text == "hi"
            assert requests.get(fake_registry.url + "/v2/").json() == {}

        def test_fixture_order_does_not_matter(requests_mock, fake_registry):
            requests_mock.get("http://other.test/hello", text="hi")
            assert requests.get(fake_registry.url + "/v2/").json() == {}
            assert requests.get("http://other.test/hello").text == "hi"

        def test_with_a_nested_mocker(fake_registry):
            with requests_mock.Mocker(real_http=True) as mocker:
                mocker.get("http://other.test/hello", text="hi")
                assert requests.get("http://other.test/hello").text == "hi"
                assert requests.get(fake_registry.url + "/v2/").json() == {}

        def test_adding_the_registry_to_a_mocker(fake_registry):
            with requests_mock.Mocker() as mocker:
                fake_registry.mock_requests(mocker)
                assert requests.get(fake_registry.url + "/v2/").json() == {}
        """,
    )
    result.assert_outcomes(passed=4)


def test_socket_fixture_is_fresh_per_test_on_one_listening_server(pytester):
    result = run(
        pytester,
        """
        import re, requests

        seen = []

        def test_first(fake_registry_server):
            assert re.fullmatch(r"127\\.0\\.0\\.1:\\d+", fake_registry_server.host)
            assert fake_registry_server.url == f"http://{fake_registry_server.host}"
            fake_registry_server.push_image("team/app", "v1")
            response = requests.get(f"{fake_registry_server.url}/v2/team/app/tags/list")
            assert response.json()["tags"] == ["v1"]
            seen.append(fake_registry_server.host)

        def test_second(fake_registry_server):
            assert fake_registry_server.host == seen[0]  # the same socket...
            response = requests.get(f"{fake_registry_server.url}/v2/_catalog")
            assert response.json() == {"repositories": []}  # ...and a fresh registry
            fake_registry_server.requests.assert_called(route="catalog", times=1)
        """,
    )
    result.assert_outcomes(passed=2)


def test_a_failure_inside_the_registry_fails_the_test_that_caused_it(pytester):
    result = run(
        pytester,
        """
        import requests

        def test_triggers_a_bug(fake_registry, monkeypatch):
            def broken(request, **args):
                raise ZeroDivisionError("a bug in the fake")
            monkeypatch.setitem(fake_registry.api.handlers, ("base", "GET"), broken)
            assert requests.get(fake_registry.url + "/v2/").status_code == 500

        def test_unaffected(fake_registry):
            assert requests.get(fake_registry.url + "/v2/").status_code == 200
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_triggers_a_bug*", "*ZeroDivisionError: a bug in the fake*"]
    )


def test_plugin_imports_nothing_heavy_until_a_fixture_is_used(pytester):
    pytester.makepyfile(
        """
        import sys

        def test_nothing_imported():
            assert "fakeregistry.pytest_plugin" in sys.modules  # loaded through the entry point...
            assert "fakeregistry.registry" not in sys.modules  # ...without the registry
            assert "werkzeug" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_marker_rejects_positional_arguments(pytester):
    result = run(
        pytester,
        """
        import pytest

        @pytest.mark.fake_registry(False)
        def test_bad(fake_registry):
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*keyword options only*"])


@pytest.mark.parametrize("fixture", ["fake_registry", "fake_registry_server"])
def test_fixtures_are_documented_in_fixtures_listing(pytester, fixture):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("--fixtures", "-p", "no:hypothesispytest")
    result.stdout.fnmatch_lines([f"{fixture}*"])


def test_requests_mock_reset_mock_works_beside_the_registry(pytester):
    result = run(
        pytester,
        """
        import requests

        def test_reset(fake_registry, requests_mock):
            requests_mock.get("http://other.test/", text="hi")
            requests.get("http://other.test/")
            requests_mock.reset_mock()
            assert requests.get(fake_registry.url + "/v2/").status_code == 200
        """,
    )
    result.assert_outcomes(passed=1)
