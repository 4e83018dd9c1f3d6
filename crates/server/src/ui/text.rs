//! What the web UI says, in each of its languages. Every page takes one [`Text`] whole, so a
//! language missing a phrase does not compile.

/// The languages of the web UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Uk,
    Ko,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Uk, Lang::Ko];

    /// Its BCP 47 tag, as in `lang=` and `Accept-Language`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Uk => "uk",
            Lang::Ko => "ko",
        }
    }

    /// The language `code` names (`uk`, `uk-UA`, `KO-kr`), if the UI speaks it.
    pub fn of(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?;
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// The first language of an `Accept-Language` header the UI speaks, in the order given
    /// (weights are not read: browsers list languages best first).
    pub fn accepted(header: &str) -> Option<Lang> {
        header
            .split(',')
            .filter_map(|item| item.split(';').next())
            .find_map(Lang::of)
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Uk => &UK,
            Lang::Ko => &KO,
        }
    }
}

/// Every phrase of the UI. `{s}`, `{why}`, `{wish}`, `{state}` and `{case}` are filled in.
pub struct Text {
    /// The language's own name, for the switch between languages.
    pub name: &'static str,
    pub captives: &'static str,
    pub deadlines: &'static str,
    pub signed_in_as: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub user: &'static str,
    pub password: &'static str,
    pub code: &'static str,
    pub sign_in_failed: &'static str,
    pub throttled: &'static str,
    pub sign_in_incomplete: &'static str,
    pub case: &'static str,
    pub power: &'static str,
    pub captured_on: &'static str,
    pub captured_at: &'static str,
    pub record: &'static str,
    pub registered: &'static str,
    pub erased: &'static str,
    pub next_page: &'static str,
    pub no_captives: &'static str,
    pub captive: &'static str,
    pub names: &'static str,
    pub date_of_birth: &'static str,
    pub place_of_birth: &'static str,
    pub rank: &'static str,
    pub service_number: &'static str,
    pub unit: &'static str,
    pub father_first_name: &'static str,
    pub mother_maiden_name: &'static str,
    pub not_stated: &'static str,
    pub withheld: &'static str,
    pub read_recorded: &'static str,
    pub protection: &'static str,
    pub protected: &'static str,
    pub not_protected: &'static str,
    pub wish: &'static str,
    pub wish_none: &'static str,
    pub wish_stated: &'static str,
    pub wish_verified: &'static str,
    pub wish_contested: &'static str,
    pub wish_unreadable: &'static str,
    pub wish_return: &'static str,
    pub wish_stay: &'static str,
    pub wish_third_state: &'static str,
    pub wish_undecided: &'static str,
    pub due: &'static str,
    pub duty: &'static str,
    pub state: &'static str,
    pub capture_card: &'static str,
    pub notification: &'static str,
    pub health_update: &'static str,
    pub commission_decision: &'static str,
    pub status_due: &'static str,
    pub status_overdue: &'static str,
    pub status_waived: &'static str,
    pub overdue_only: &'static str,
    pub all_duties: &'static str,
    pub no_duties: &'static str,
    pub no_such_captive: &'static str,
    pub no_such_page: &'static str,
    pub forbidden: &'static str,
    pub gone: &'static str,
    pub busy: &'static str,
    pub failed: &'static str,
    pub back: &'static str,
}

pub static EN: Text = Text {
    name: "English",
    captives: "Captives",
    deadlines: "Deadlines",
    signed_in_as: "Signed in as",
    sign_in: "Sign in",
    sign_out: "Sign out",
    user: "User name",
    password: "Password",
    code: "Authenticator code",
    sign_in_failed: "Sign-in failed: wrong user name, password or code.",
    throttled: "Too many failed sign-ins: try again in {s} s.",
    sign_in_incomplete: "Give your user name, password and the code your authenticator shows.",
    case: "Case number",
    power: "Power he depends on",
    captured_on: "Captured on",
    captured_at: "Place of capture",
    record: "Record",
    registered: "registered",
    erased: "erased",
    next_page: "Next page",
    no_captives: "No captives to show.",
    captive: "Captive {case}",
    names: "Names",
    date_of_birth: "Date of birth",
    place_of_birth: "Place of birth",
    rank: "Rank",
    service_number: "Service number",
    unit: "Unit",
    father_first_name: "Father's first name",
    mother_maiden_name: "Mother's maiden name",
    not_stated: "Did not give",
    withheld: "Not shown to you",
    read_recorded: "Opening this record is recorded in his access history.",
    protection: "Return to the power of origin (G1)",
    protected: "barred: {why}",
    not_protected: "not barred",
    wish: "His wish",
    wish_none: "none recorded",
    wish_stated: "stated, not yet verified: {wish}",
    wish_verified: "verified: {wish}",
    wish_contested: "changed at his latest interview: {wish}",
    wish_unreadable: "cannot be read (erased)",
    wish_return: "to return to the power he depends on",
    wish_stay: "to stay in the detaining state",
    wish_third_state: "to go to {state}",
    wish_undecided: "undecided",
    due: "Due",
    duty: "Duty",
    state: "State",
    capture_card: "Capture card (Art 70)",
    notification: "Notification (Art 122)",
    health_update: "Health news (Art 122)",
    commission_decision: "Commission's decision carried out (Art 110)",
    status_due: "due",
    status_overdue: "overdue",
    status_waived: "waived: {why}",
    overdue_only: "Overdue only",
    all_duties: "All open duties",
    no_duties: "No open duties.",
    no_such_captive: "No such captive.",
    no_such_page: "No such page.",
    forbidden: "You may not see this: {why}",
    gone: "This captive's record was erased.",
    busy: "The registry is busy: try again in a few seconds.",
    failed: "Something went wrong; nothing was changed.",
    back: "Back to the captives",
};

pub static UK: Text = Text {
    name: "Українська",
    captives: "Полонені",
    deadlines: "Строки",
    signed_in_as: "Ви увійшли як",
    sign_in: "Увійти",
    sign_out: "Вийти",
    user: "Ім'я користувача",
    password: "Пароль",
    code: "Код автентифікатора",
    sign_in_failed: "Не вдалося увійти: неправильне ім'я користувача, пароль або код.",
    throttled: "Забагато невдалих спроб входу: спробуйте знову через {s} с.",
    sign_in_incomplete: "Вкажіть ім'я користувача, пароль і код, який показує ваш автентифікатор.",
    case: "Номер справи",
    power: "Держава, від якої він залежить",
    captured_on: "Дата полонення",
    captured_at: "Місце полонення",
    record: "Запис",
    registered: "зареєстровано",
    erased: "стерто",
    next_page: "Наступна сторінка",
    no_captives: "Немає полонених для показу.",
    captive: "Полонений {case}",
    names: "Імена",
    date_of_birth: "Дата народження",
    place_of_birth: "Місце народження",
    rank: "Звання",
    service_number: "Особистий номер",
    unit: "Військова частина",
    father_first_name: "Ім'я батька",
    mother_maiden_name: "Дівоче прізвище матері",
    not_stated: "Не повідомив",
    withheld: "Вам не показано",
    read_recorded: "Відкриття цього запису фіксується в історії доступу до нього.",
    protection: "Повернення до держави походження (G1)",
    protected: "заборонено: {why}",
    not_protected: "не заборонено",
    wish: "Його бажання",
    wish_none: "не записано",
    wish_stated: "заявлене, ще не підтверджене: {wish}",
    wish_verified: "підтверджене: {wish}",
    wish_contested: "змінене на останній співбесіді: {wish}",
    wish_unreadable: "не можна прочитати (стерто)",
    wish_return: "повернутися до держави, від якої він залежить",
    wish_stay: "залишитися в державі, що тримає його в полоні",
    wish_third_state: "виїхати до {state}",
    wish_undecided: "не визначився",
    due: "Строк",
    duty: "Обов'язок",
    state: "Стан",
    capture_card: "Картка полоненого (ст. 70)",
    notification: "Повідомлення (ст. 122)",
    health_update: "Відомості про здоров'я (ст. 122)",
    commission_decision: "Виконання рішення комісії (ст. 110)",
    status_due: "у строк",
    status_overdue: "прострочено",
    status_waived: "знято: {why}",
    overdue_only: "Лише прострочені",
    all_duties: "Усі відкриті обов'язки",
    no_duties: "Немає відкритих обов'язків.",
    no_such_captive: "Такого полоненого немає.",
    no_such_page: "Такої сторінки немає.",
    forbidden: "Вам не дозволено це бачити: {why}",
    gone: "Запис цього полоненого стерто.",
    busy: "Реєстр зайнятий: спробуйте ще раз за кілька секунд.",
    failed: "Сталася помилка; нічого не змінено.",
    back: "До списку полонених",
};

pub static KO: Text = Text {
    name: "한국어",
    captives: "포로",
    deadlines: "기한",
    signed_in_as: "로그인 사용자",
    sign_in: "로그인",
    sign_out: "로그아웃",
    user: "사용자 이름",
    password: "비밀번호",
    code: "인증 코드",
    sign_in_failed: "로그인 실패: 사용자 이름, 비밀번호 또는 코드가 틀렸습니다.",
    throttled: "로그인 실패가 너무 많습니다: {s}초 후에 다시 시도하십시오.",
    sign_in_incomplete: "사용자 이름, 비밀번호, 인증 앱에 표시된 코드를 입력하십시오.",
    case: "사건 번호",
    power: "소속 국가",
    captured_on: "포획 일자",
    captured_at: "포획 장소",
    record: "기록",
    registered: "등록됨",
    erased: "삭제됨",
    next_page: "다음 페이지",
    no_captives: "표시할 포로가 없습니다.",
    captive: "포로 {case}",
    names: "이름",
    date_of_birth: "생년월일",
    place_of_birth: "출생지",
    rank: "계급",
    service_number: "군번",
    unit: "부대",
    father_first_name: "아버지 이름",
    mother_maiden_name: "어머니 결혼 전 성",
    not_stated: "밝히지 않음",
    withheld: "열람 권한 없음",
    read_recorded: "이 기록의 열람은 본인의 열람 이력에 기록됩니다.",
    protection: "소속국 송환 (G1)",
    protected: "금지됨: {why}",
    not_protected: "금지되지 않음",
    wish: "본인의 희망",
    wish_none: "기록 없음",
    wish_stated: "진술됨, 아직 확인되지 않음: {wish}",
    wish_verified: "확인됨: {wish}",
    wish_contested: "최근 면담에서 변경됨: {wish}",
    wish_unreadable: "읽을 수 없음 (삭제됨)",
    wish_return: "소속국으로 귀환",
    wish_stay: "억류국에 잔류",
    wish_third_state: "{state}(으)로 이주",
    wish_undecided: "미정",
    due: "기한",
    duty: "의무",
    state: "상태",
    capture_card: "포로 카드 (제70조)",
    notification: "통보 (제122조)",
    health_update: "건강 소식 (제122조)",
    commission_decision: "위원회 결정 이행 (제110조)",
    status_due: "기한 내",
    status_overdue: "기한 초과",
    status_waived: "면제: {why}",
    overdue_only: "기한 초과만",
    all_duties: "모든 미이행 의무",
    no_duties: "미이행 의무가 없습니다.",
    no_such_captive: "해당 포로가 없습니다.",
    no_such_page: "해당 페이지가 없습니다.",
    forbidden: "열람할 수 없습니다: {why}",
    gone: "이 포로의 기록은 삭제되었습니다.",
    busy: "등록부가 사용 중입니다: 몇 초 후에 다시 시도하십시오.",
    failed: "오류가 발생했습니다. 아무것도 변경되지 않았습니다.",
    back: "포로 목록으로",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_is_read_from_its_tag_and_from_a_browsers_list() {
        assert_eq!(Lang::of("uk-UA"), Some(Lang::Uk));
        assert_eq!(Lang::of("KO"), Some(Lang::Ko));
        assert_eq!(Lang::of("de"), None);
        assert_eq!(Lang::of(""), None);
        assert_eq!(Lang::accepted("de-DE,ko;q=0.8,en;q=0.5"), Some(Lang::Ko));
        assert_eq!(Lang::accepted("fr, de"), None);
        for l in Lang::ALL {
            assert_eq!(Lang::of(l.code()), Some(l));
        }
    }
}
