"""The console's residents list (paged, search), the CSV import with its result (every bad
row by line), and the ledger seals with "verify now" — scope, roles and CSRF."""

from __future__ import annotations

import io
import re

from pointsvc.extensions import db
from pointsvc.people.models import Resident, User

from .conftest import Page, text_of


def _staff(app, user_id: int) -> Page:  # type: ignore[no-untyped-def]
    page = Page(app.test_client())
    page.sign_in(app, user_id, till=True)
    return page


def _upload(page: Page, text: str, **fields):  # type: ignore[no-untyped-def]
    data = {"file": (io.BytesIO(text.encode("utf-8")), "residents.csv"), **fields}
    return page.post("/console/people/import", data, content_type="multipart/form-data")


def _residents_named(app, name: str) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        count = db.session.query(Resident).join(User, User.id == Resident.user_id).filter(
            User.display_name == name).count()
        db.session.remove()
        return count


def test_the_list_shows_residents_in_scope_with_masked_phones(app, world):
    staff = _staff(app, world.organizer_a)
    page = staff.get("/console/people")
    assert page.status_code == 200
    assert "张小明" in text_of(page) and "王芳" not in text_of(page)  # B is not in scope
    assert re.search(r"1\d\d\*{4}\d{4}", text_of(page))  # organisers see masked phones
    found = staff.get("/console/people?q=张小明")
    assert "张小明" in text_of(found) and "李华" not in text_of(found)
    assert staff.get("/console/people?cursor=!!").status_code == 422
    assert staff.get("/console/people?q=" + "x" * 65).status_code == 422
    assert "王芳" in text_of(_staff(app, world.organizer_b).get("/console/people"))


def test_the_list_is_paged(app, world):
    staff = _staff(app, world.organizer_a)
    rows = "\n".join(f"居民{n:02d},150{n:08d}" for n in range(30))
    done = _upload(staff, "name,phone\n" + rows + "\n",
                   community_id=str(world.tree.community_a))
    assert done.status_code == 200, text_of(done)
    first = staff.get("/console/people")
    link = re.search(r'rel="next" href="([^"]+)"', first.get_data(as_text=True))
    assert link
    second = staff.get(link.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert not set(re.findall(r"居民\d\d", text_of(first))) & set(
        re.findall(r"居民\d\d", text_of(second)))


def test_import_lists_every_bad_row_and_imports_nothing(app, world):
    staff = _staff(app, world.organizer_a)
    assert "导入居民" in text_of(staff.get("/console/people/import"))
    csv = ("name,phone,community_id\n"
           f"赵一,15811110001,{world.tree.community_a}\n"
           f"钱二,12345,{world.tree.community_a}\n"
           f"孙三,15811110001,{world.tree.community_a}\n"
           f"李四,15811110004,{world.tree.community_b}\n")
    refused = _upload(staff, csv)
    assert refused.status_code == 422
    text = text_of(refused)
    assert "没有导入任何数据" in text
    assert "3 不是有效的大陆手机号" in text.replace("phone ", "")
    assert "与第 2 行手机号重复" in text
    assert "这个社区不在您的管辖范围内" in text
    assert _residents_named(app, "赵一") == 0
    # Partial: the good row goes in, the bad ones are still listed.
    partial = _upload(staff, csv, partial="1")
    assert partial.status_code == 200
    assert "共 4 行，导入 1 行" in text_of(partial) and "与第 2 行手机号重复" in text_of(partial)
    assert _residents_named(app, "赵一") == 1
    assert "赵一" in text_of(staff.get("/console/people?q=赵一"))


def test_import_bad_files_are_inline(app, world):
    staff = _staff(app, world.organizer_a)
    no_file = staff.post("/console/people/import", {}, content_type="multipart/form-data")
    assert no_file.status_code == 422 and 'id="e-file"' in no_file.get_data(as_text=True)
    gbk_bad = staff.post("/console/people/import",
                         {"file": (io.BytesIO(b"\xff\xfe\x00\x81"), "x.csv")},
                         content_type="multipart/form-data")
    assert gbk_bad.status_code == 422 and 'id="e-file"' in gbk_bad.get_data(as_text=True)
    header = _upload(staff, "who,when\n1,2\n")
    assert header.status_code == 422 and "无法把这个文件读作居民名单" in text_of(header)
    wrong = _upload(staff, "name,phone\n赵一,15811110001\n", community_id="abc")
    assert wrong.status_code == 422 and "请输入整数" in text_of(wrong)


def test_import_is_refused_outside_scope_without_csrf_and_for_auditors(app, world):
    staff = _staff(app, world.organizer_a)
    refused = _upload(staff, "name,phone\n赵一,15811110001\n",
                      community_id=str(world.tree.community_b))
    assert refused.status_code == 403 and _residents_named(app, "赵一") == 0
    no_token = staff.client.post(
        "/console/people/import", data={"file": (io.BytesIO(b"name,phone\n"), "x.csv")},
        content_type="multipart/form-data")
    assert no_token.status_code == 400
    auditor = _staff(app, world.auditor_a)
    assert auditor.get("/console/people").status_code == 200
    assert auditor.get("/console/people/import").status_code == 403


def test_seals_and_verify_now(app, world):
    from pointsvc.ledger import seals
    from tests.redemption.conftest import fund

    fund(app, world.resident, 50)
    with app.app_context():
        made = seals.seal()
        assert made is not None
        seq = made.seq
        db.session.remove()
    admin = _staff(app, world.admin)
    page = admin.get("/console/seals")
    assert page.status_code == 200
    assert f"封存 {seq}" in text_of(page) and "签名有效" in text_of(page)
    assert "还没有在工作台核验过账本" in text_of(page)
    verified = admin.post("/console/seals/verify")
    assert verified.status_code == 302
    after = admin.get("/console/seals")
    assert "核验通过" in text_of(after)
    # Organisers and auditors read the seals but may not run the verification.
    organizer = _staff(app, world.organizer_a)
    assert "核验通过" in text_of(organizer.get("/console/seals"))
    assert "立即核验" not in text_of(organizer.get("/console/seals"))
    assert organizer.post("/console/seals/verify").status_code == 403
    assert admin.client.post("/console/seals/verify").status_code == 400  # no CSRF token
    assert admin.get("/console/seals?cursor=nope").status_code == 422


def test_a_broken_ledger_shows_the_problem(app, world, monkeypatch):
    from pointsvc.web.views import console_seals

    monkeypatch.setattr(console_seals, "verify_ledger",
                        lambda: ["transaction 7: content hash does not recompute"])
    admin = _staff(app, world.admin)
    admin.post("/console/seals/verify")
    page = admin.get("/console/seals")
    assert "核验发现问题" in text_of(page) and "transaction 7" in text_of(page)
