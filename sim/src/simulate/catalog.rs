//! Fixed reference data of the simulated world: places, applications, roles, methods, names and
//! the texts Entra writes. Microsoft's first-party app ids and built-in role template ids are the
//! public ones (the same in every tenant); everything personal is invented.

/// A place: name, state, ISO country, latitude, longitude, UTC offset in hours (standard time).
#[derive(Debug, Clone, Copy)]
pub struct City {
    pub name: &'static str,
    pub state: &'static str,
    pub country: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub tz: i64,
}

const fn c(
    name: &'static str,
    state: &'static str,
    country: &'static str,
    lat: f64,
    lon: f64,
    tz: i64,
) -> City {
    City {
        name,
        state,
        country,
        lat,
        lon,
        tz,
    }
}

pub const CITIES: &[City] = &[
    c("Seattle", "Washington", "US", 47.6062, -122.3321, -8),
    c("Portland", "Oregon", "US", 45.5152, -122.6784, -8),
    c("Chicago", "Illinois", "US", 41.8781, -87.6298, -6),
    c("Milwaukee", "Wisconsin", "US", 43.0389, -87.9065, -6),
    c("New York", "New York", "US", 40.7128, -74.0060, -5),
    c("Philadelphia", "Pennsylvania", "US", 39.9526, -75.1652, -5),
    c("Austin", "Texas", "US", 30.2672, -97.7431, -6),
    c("San Antonio", "Texas", "US", 29.4241, -98.4936, -6),
    c("Denver", "Colorado", "US", 39.7392, -104.9903, -7),
    c("Boston", "Massachusetts", "US", 42.3601, -71.0589, -5),
    c("London", "England", "GB", 51.5072, -0.1276, 0),
    c("Birmingham", "England", "GB", 52.4862, -1.8904, 0),
    c("Manchester", "England", "GB", 53.4808, -2.2426, 0),
    c("Dublin", "Dublin", "IE", 53.3498, -6.2603, 0),
    c("Cork", "Cork", "IE", 51.8985, -8.4756, 0),
    c("Berlin", "Berlin", "DE", 52.5200, 13.4050, 1),
    c("Hamburg", "Hamburg", "DE", 53.5511, 9.9937, 1),
    c("Munich", "Bayern", "DE", 48.1351, 11.5820, 1),
    c("Nuremberg", "Bayern", "DE", 49.4521, 11.0767, 1),
    c("Amsterdam", "Noord-Holland", "NL", 52.3676, 4.9041, 1),
    c("Rotterdam", "Zuid-Holland", "NL", 51.9244, 4.4777, 1),
    c("Paris", "Ile-de-France", "FR", 48.8566, 2.3522, 1),
    c("Lille", "Hauts-de-France", "FR", 50.6292, 3.0573, 1),
    c("Sydney", "New South Wales", "AU", -33.8688, 151.2093, 10),
    c(
        "Canberra",
        "Australian Capital Territory",
        "AU",
        -35.2809,
        149.1300,
        10,
    ),
    c("Toronto", "Ontario", "CA", 43.6532, -79.3832, -5),
    c("Ottawa", "Ontario", "CA", 45.4215, -75.6972, -5),
    // Places attackers and anonymisers appear from.
    c("Lagos", "Lagos", "NG", 6.5244, 3.3792, 1),
    c("Moscow", "Moscow", "RU", 55.7558, 37.6173, 3),
    c("Sao Paulo", "Sao Paulo", "BR", -23.5505, -46.6333, -3),
    c("Jakarta", "Jakarta", "ID", -6.2088, 106.8456, 7),
    c("Bucharest", "Bucuresti", "RO", 44.4268, 26.1025, 2),
    c("Hanoi", "Ha Noi", "VN", 21.0278, 105.8342, 7),
    // Places guests live in.
    c("Madrid", "Madrid", "ES", 40.4168, -3.7038, 1),
    c("Stockholm", "Stockholm", "SE", 59.3293, 18.0686, 1),
    c("Zurich", "Zurich", "CH", 47.3769, 8.5417, 1),
    c("Tokyo", "Tokyo", "JP", 35.6762, 139.6503, 9),
    c("Singapore", "Singapore", "SG", 1.3521, 103.8198, 8),
];

pub fn city(name: &str) -> usize {
    CITIES.iter().position(|c| c.name == name).unwrap_or(0)
}

/// Customer head offices, each with a branch office under 400 km away (a commute, not a flight).
/// The first is always Seattle: the benign traveller flies from there.
pub const HQS: &[(&str, &str)] = &[
    ("Seattle", "Portland"),
    ("Chicago", "Milwaukee"),
    ("London", "Birmingham"),
    ("Berlin", "Hamburg"),
    ("Amsterdam", "Rotterdam"),
    ("New York", "Philadelphia"),
    ("Dublin", "Cork"),
    ("Paris", "Lille"),
    ("Austin", "San Antonio"),
    ("Munich", "Nuremberg"),
    ("Sydney", "Canberra"),
    ("Toronto", "Ottawa"),
    ("Denver", "Denver"),
    ("Boston", "New York"),
    ("Manchester", "London"),
];

pub const ATTACKER_CITIES: &[&str] = &[
    "Lagos",
    "Moscow",
    "Sao Paulo",
    "Jakarta",
    "Bucharest",
    "Hanoi",
];
pub const GUEST_CITIES: &[&str] = &[
    "Madrid",
    "Stockholm",
    "Zurich",
    "Tokyo",
    "Singapore",
    "Toronto",
    "Paris",
];

/// An application and the resource it signs in to.
#[derive(Debug, Clone, Copy)]
pub struct App {
    pub name: &'static str,
    pub id: &'static str,
    pub resource: &'static str,
    pub resource_id: &'static str,
}

const fn app(
    name: &'static str,
    id: &'static str,
    resource: &'static str,
    resource_id: &'static str,
) -> App {
    App {
        name,
        id,
        resource,
        resource_id,
    }
}

const GRAPH: (&str, &str) = ("Microsoft Graph", "00000003-0000-0000-c000-000000000000");
const EXO: (&str, &str) = (
    "Office 365 Exchange Online",
    "00000002-0000-0ff1-ce00-000000000000",
);
const SPO: (&str, &str) = (
    "Office 365 SharePoint Online",
    "00000003-0000-0ff1-ce00-000000000000",
);
const TEAMS: (&str, &str) = (
    "Microsoft Teams Services",
    "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
);

/// Indexes into [`APPS`].
pub mod apps {
    pub const OFFICE_HOME: usize = 0;
    pub const OUTLOOK_WEB: usize = 1;
    pub const SHAREPOINT: usize = 2;
    pub const TEAMS_WEB: usize = 3;
    pub const OFFICE_DESKTOP: usize = 4;
    pub const TEAMS_DESKTOP: usize = 5;
    pub const ONEDRIVE_SYNC: usize = 6;
    pub const OUTLOOK_MOBILE: usize = 7;
    pub const TEAMS_MOBILE: usize = 8;
    pub const AZURE_PORTAL: usize = 9;
    pub const ENTRA_ADMIN: usize = 10;
    pub const M365_ADMIN: usize = 11;
    pub const GRAPH_CLI: usize = 12;
    pub const EXCHANGE_LEGACY: usize = 13;
    pub const AZURE_PORTAL_ARM: usize = 14;
    pub const MY_SIGNINS: usize = 15;
    pub const TEAMS_GRAPH: usize = 16;
}

pub const APPS: &[App] = &[
    app(
        "OfficeHome",
        "4765445b-32c6-49b0-83e6-1d93765276ca",
        "OfficeHome",
        "4765445b-32c6-49b0-83e6-1d93765276ca",
    ),
    app(
        "One Outlook Web",
        "9199bf20-a13f-4107-85dc-02114787ef48",
        EXO.0,
        EXO.1,
    ),
    app("Office 365 SharePoint Online", SPO.1, SPO.0, SPO.1),
    app(
        "Microsoft Teams Web Client",
        "5e3ce6c0-2b1f-4285-8d4b-75ee78787346",
        TEAMS.0,
        TEAMS.1,
    ),
    app(
        "Microsoft Office",
        "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        GRAPH.0,
        GRAPH.1,
    ),
    app(
        "Microsoft Teams",
        "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        TEAMS.0,
        TEAMS.1,
    ),
    app(
        "OneDrive SyncEngine",
        "ab9b8c07-8f02-4f72-87fa-80105867a763",
        SPO.0,
        SPO.1,
    ),
    app(
        "Outlook Mobile",
        "27922004-5251-4030-b22d-91ecd9a37ea4",
        EXO.0,
        EXO.1,
    ),
    app(
        "Microsoft Teams",
        "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        TEAMS.0,
        TEAMS.1,
    ),
    app(
        "Azure Portal",
        "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        "Windows Azure Service Management API",
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    ),
    app(
        "ADIbizaUX",
        "74658136-14ec-4630-ad9b-26e160ff0fc6",
        "Windows Azure Active Directory",
        "00000002-0000-0000-c000-000000000000",
    ),
    app(
        "Microsoft Office 365 Portal",
        "00000006-0000-0ff1-ce00-000000000000",
        "Microsoft Office 365 Portal",
        "00000006-0000-0ff1-ce00-000000000000",
    ),
    app(
        "Microsoft Graph Command Line Tools",
        "14d82eec-204b-4c2f-b7e8-296a70dab67e",
        GRAPH.0,
        GRAPH.1,
    ),
    app("Office 365 Exchange Online", EXO.1, EXO.0, EXO.1),
    app(
        "Azure Portal",
        "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        "Azure Resource Manager",
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    ),
    app(
        "My Signins",
        "19db86c3-b2b9-44cc-b339-36da233a3be2",
        GRAPH.0,
        GRAPH.1,
    ),
    app(
        "Microsoft Teams",
        "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        GRAPH.0,
        GRAPH.1,
    ),
];

/// Regular users' interactive web apps and their desktop / mobile token refreshers.
pub const USER_WEB_APPS: &[usize] = &[
    apps::OFFICE_HOME,
    apps::OUTLOOK_WEB,
    apps::SHAREPOINT,
    apps::TEAMS_WEB,
];
pub const USER_DESKTOP_APPS: &[usize] = &[
    apps::OFFICE_DESKTOP,
    apps::TEAMS_DESKTOP,
    apps::ONEDRIVE_SYNC,
];
pub const USER_MOBILE_APPS: &[usize] = &[apps::OUTLOOK_MOBILE, apps::TEAMS_MOBILE];
/// Admin accounts and technicians touch administration only, never mail or collaboration.
pub const ADMIN_APPS: &[usize] = &[apps::AZURE_PORTAL, apps::ENTRA_ADMIN, apps::M365_ADMIN];
pub const ADMIN_TOOL_APPS: &[usize] = &[apps::GRAPH_CLI, apps::AZURE_PORTAL_ARM];

/// A directory role: template id, display name, well-known object name, privileged (docs/detectors.md).
#[derive(Debug, Clone, Copy)]
pub struct Role {
    pub template: &'static str,
    pub name: &'static str,
    pub well_known: &'static str,
    pub privileged: bool,
}

const fn role(
    template: &'static str,
    name: &'static str,
    well_known: &'static str,
    privileged: bool,
) -> Role {
    Role {
        template,
        name,
        well_known,
        privileged,
    }
}

pub mod roles {
    pub const GLOBAL_ADMIN: usize = 0;
    pub const PRIVILEGED_ROLE_ADMIN: usize = 1;
    pub const SECURITY_ADMIN: usize = 2;
    pub const USER_ADMIN: usize = 3;
    pub const HELPDESK_ADMIN: usize = 4;
    pub const EXCHANGE_ADMIN: usize = 5;
    pub const SHAREPOINT_ADMIN: usize = 6;
    pub const INTUNE_ADMIN: usize = 7;
    pub const APPLICATION_ADMIN: usize = 12;
    pub const MESSAGE_CENTER_READER: usize = 8;
    pub const REPORTS_READER: usize = 9;
    pub const DIRECTORY_READERS: usize = 10;
}

pub const ROLES: &[Role] = &[
    role(
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
        "CompanyAdministrator",
        true,
    ),
    role(
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
        "PrivilegedRoleAdministrator",
        true,
    ),
    role(
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
        "SecurityAdministrator",
        true,
    ),
    role(
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "User Administrator",
        "UserAccountAdministrator",
        true,
    ),
    role(
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
        "HelpdeskAdministrator",
        true,
    ),
    role(
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
        "ExchangeServiceAdministrator",
        true,
    ),
    role(
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
        "SharePointServiceAdministrator",
        true,
    ),
    role(
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
        "Intune Administrator",
        "IntuneServiceAdministrator",
        true,
    ),
    role(
        "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",
        "Message Center Reader",
        "MessageCenterReader",
        false,
    ),
    role(
        "4a5d8f65-41da-4de4-8968-e035b65339cf",
        "Reports Reader",
        "ReportsReader",
        false,
    ),
    role(
        "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
        "Directory Readers",
        "DirectoryReaders",
        false,
    ),
    role(
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        "Global Reader",
        "GlobalReader",
        false,
    ),
    role(
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
        "ApplicationAdministrator",
        true,
    ),
];

/// Second factors as the sign-in log names them, and whether they resist phishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    MobileApp,
    Sms,
    Oath,
    PhoneCall,
    Fido2,
    Whfb,
}

impl Method {
    pub fn log_name(self) -> &'static str {
        match self {
            Method::MobileApp => "Mobile app notification",
            Method::Sms => "Text message",
            Method::Oath => "OATH verification code",
            Method::PhoneCall => "Phone call approval (Authentication phone)",
            Method::Fido2 => "FIDO2 security key",
            Method::Whfb => "Windows Hello for Business",
        }
    }

    pub fn detail(self) -> &'static str {
        match self {
            Method::MobileApp => "Microsoft Authenticator",
            Method::Sms | Method::PhoneCall => "+X XXXXXXXX42",
            Method::Oath => "Hardware OATH token",
            Method::Fido2 => "YubiKey 5 NFC",
            Method::Whfb => "Windows Hello for Business",
        }
    }
}

pub const FIRST_NAMES: &[&str] = &[
    "Adele", "Alex", "Allan", "Amelia", "Ana", "Bianca", "Bruno", "Carlos", "Chloe", "Daan",
    "Dana", "Diego", "Elif", "Emma", "Eun", "Farah", "Felix", "Grace", "Hana", "Harry", "Ines",
    "Isaiah", "Ivan", "Jack", "Johanna", "Jonas", "Julia", "Kofi", "Lars", "Lee", "Lena", "Lidia",
    "Lucas", "Maya", "Megan", "Mia", "Miguel", "Nadia", "Nestor", "Noah", "Olga", "Oliver", "Omar",
    "Patti", "Pradeep", "Priya", "Quinn", "Raj", "Rosa", "Ruben", "Sam", "Sanne", "Sara", "Sofia",
    "Tomasz", "Uma", "Victor", "Wei", "Yara", "Zoe",
];

pub const LAST_NAMES: &[&str] = &[
    "Adams",
    "Bakker",
    "Bowen",
    "Brandt",
    "Chen",
    "Clarke",
    "Costa",
    "Dubois",
    "Duarte",
    "Ellis",
    "Evans",
    "Fernandes",
    "Fischer",
    "Garcia",
    "Gu",
    "Hughes",
    "Ivanova",
    "Jansen",
    "Kim",
    "Kowalski",
    "Langer",
    "Lorenz",
    "Mensah",
    "Meijer",
    "Moreau",
    "Mulder",
    "Natarajan",
    "Nowak",
    "Okafor",
    "Olsen",
    "Patel",
    "Petrov",
    "Quinn",
    "Rossi",
    "Santos",
    "Schmidt",
    "Siciliani",
    "Silva",
    "Smit",
    "Tanaka",
    "Turner",
    "Vance",
    "Visser",
    "Walker",
    "Wilber",
    "Wright",
    "Yilmaz",
    "Zhang",
];

pub const TENANT_NAMES: &[&str] = &[
    "Contoso",
    "Fabrikam",
    "Tailspin Toys",
    "Wingtip Toys",
    "Adatum",
    "Litware",
    "Proseware",
    "Woodgrove Bank",
    "Alpine Ski House",
    "Coho Winery",
    "Fourth Coffee",
    "Lamna Healthcare",
    "Relecloud",
    "Trey Research",
    "Wide World Importers",
    "Margie's Travel",
    "Humongous Insurance",
    "Blue Yonder Airlines",
    "VanArsdel",
    "Lucerne Publishing",
    "Southridge Video",
    "Consolidated Messenger",
    "Bellows College",
    "Munson's Pickles",
    "Graphic Design Institute",
    "City Power & Light",
    "School of Fine Art",
    "Best For You Organics",
];

pub const GUEST_ORGS: &[&str] = &[
    "Globex",
    "Initech",
    "Umbrella Logistics",
    "Hooli",
    "Vandelay Industries",
];

pub const PARTNER_NAME: &str = "Northwind CSP";
pub const PARTNER_DOMAIN: &str = "northwindcsp.example";
pub const ROGUE_PARTNER_NAME: &str = "Fabrikam Cloud Partners";
pub const SECOND_PARTNER_NAME: &str = "Litware Managed Security";
pub const SECOND_PARTNER_DOMAIN: &str = "litwaremssp.example";

pub mod ua {
    pub const EDGE_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
    pub const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    pub const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    pub const SAFARI_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    pub const OUTLOOK_IOS: &str = "Outlook-iOS/2.0";
    pub const OUTLOOK_ANDROID: &str = "Outlook-Android/2.0";
    pub const TEAMS_MOBILE: &str = "Microsoft Teams/1416/1.0.0.2024112701 (iOS 18.1)";
    pub const OFFICE_DESKTOP: &str =
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.18129; Pro)";
    pub const TEAMS_DESKTOP: &str = "Microsoft Teams/24295.605.3225.8804 (Windows NT 10.0)";
    pub const ONEDRIVE: &str =
        "Microsoft SkyDriveSync 24.211.1020.0003 ship; Windows NT 10.0 (22631)";
    pub const POWERSHELL: &str =
        "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.6";
    pub const PYTHON: &str = "python-requests/2.32.3";
    pub const BAV2ROPC: &str = "BAV2ROPC";
}

/// `status.failureReason` for the codes the world uses.
pub fn failure_reason(code: u32) -> &'static str {
    match code {
        0 => "Other.",
        50126 => "Error validating credentials due to invalid username or password.",
        50074 => "Strong Authentication is required.",
        50140 => {
            "This error occurred due to 'Keep me signed in' interrupt when the user was signing-in."
        }
        50057 => "User account is disabled. The account has been disabled by an administrator.",
        50053 => {
            "Account is locked because user tried to sign in too many times with an incorrect user ID or password."
        }
        50034 => {
            "The user account does not exist in the directory. To sign into this application, the account must be added to the directory."
        }
        53003 => {
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."
        }
        500121 => "Authentication failed during strong authentication request.",
        _ => "Other.",
    }
}

/// `status.additionalDetails` where Entra writes one.
pub fn failure_details(code: u32) -> Option<&'static str> {
    match code {
        50126 => Some(
            "The user didn't enter the right credentials. It's expected to see some number of these errors in your logs due to users making mistakes.",
        ),
        50074 => Some("MFA required"),
        50140 => Some("The user was presented the 'Keep me signed in' prompt."),
        500121 => Some("MFA denied; user declined the authentication"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_indexes_name_their_roles() {
        assert_eq!(ROLES[roles::GLOBAL_ADMIN].name, "Global Administrator");
        assert_eq!(
            ROLES[roles::PRIVILEGED_ROLE_ADMIN].name,
            "Privileged Role Administrator"
        );
        assert_eq!(ROLES[roles::INTUNE_ADMIN].name, "Intune Administrator");
        assert_eq!(ROLES[roles::DIRECTORY_READERS].name, "Directory Readers");
        assert_eq!(
            ROLES[roles::APPLICATION_ADMIN].name,
            "Application Administrator"
        );
    }

    #[test]
    fn privileged_roles_are_the_detection_catalogue() {
        let catalogue = entrawatch_detect::config::PRIVILEGED_ROLE_TEMPLATES;
        for r in ROLES {
            let listed = catalogue.iter().any(|(id, _)| *id == r.template);
            assert_eq!(r.privileged, listed, "{}", r.name);
        }
    }

    #[test]
    fn branch_offices_are_a_commute_away() {
        for (hq, branch) in HQS {
            let (a, b) = (CITIES[city(hq)], CITIES[city(branch)]);
            assert_eq!(a.name, *hq);
            assert_eq!(b.name, *branch);
            // Under 400 km: about 4 degrees of latitude, 6 of longitude at these latitudes.
            assert!(
                (a.lat - b.lat).abs() < 4.0 && (a.lon - b.lon).abs() < 6.0,
                "{hq} {branch}"
            );
        }
    }
}
