//! `OrgRepository` contract.

use std::future::Future;

use iace_domain::ports::{OrgRepository, StoreError};
use iace_domain::{OrgId, Plan};

use super::case;
use crate::{Harness, fixtures};

/// Runs every case.
pub async fn run<S, F, Fut>(make: F)
where
    S: OrgRepository,
    F: Fn() -> Fut,
    Fut: Future<Output = Harness<S>>,
{
    case!(make, "orgs: create then get round-trips", |s| {
        let org = fixtures::org();
        s.create(&org).await.expect("create");
        assert_eq!(s.get(org.id).await.expect("get"), org);
    });
    case!(make, "orgs: unknown id is NotFound", |s| {
        assert!(matches!(
            s.get(OrgId::new()).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.set_plan(OrgId::new(), Plan::Pro).await,
            Err(StoreError::NotFound { .. })
        ));
    });
    case!(
        make,
        "orgs: telephony settings round-trip, numbers route inbound calls, one org per number",
        |s| {
            let (a, b) = (fixtures::org(), fixtures::org());
            s.create(&a).await.expect("a");
            s.create(&b).await.expect("b");
            assert_eq!(
                s.telephony(a.id).await.expect("defaults"),
                iace_domain::TelephonySettings::default()
            );
            let number = |raw: &str| iace_domain::PhoneNumber::parse(raw).expect("number");
            let settings = iace_domain::TelephonySettings {
                numbers: vec![number("+14155550100"), number("+14155550101")],
                connection_id: Some("1494404757140276705".into()),
                media_base_url: Some("wss://media.example.com".into()),
                voicemail_message: Some("Please call us back.".into()),
            };
            s.set_telephony(a.id, &settings, fixtures::now())
                .await
                .expect("set");
            assert_eq!(s.telephony(a.id).await.expect("get"), settings);
            assert_eq!(
                s.org_for_number(&number("+14155550101"))
                    .await
                    .expect("route"),
                Some(a.id)
            );
            assert_eq!(
                s.org_for_number(&number("+14155550199"))
                    .await
                    .expect("route"),
                None
            );
            // Another organisation cannot take a number; nothing changes.
            let grab = iace_domain::TelephonySettings {
                numbers: vec![number("+14155550177"), number("+14155550100")],
                ..iace_domain::TelephonySettings::default()
            };
            assert!(matches!(
                s.set_telephony(b.id, &grab, fixtures::now()).await,
                Err(StoreError::AlreadyExists { .. })
            ));
            assert_eq!(
                s.telephony(b.id).await.expect("b unchanged"),
                iace_domain::TelephonySettings::default()
            );
            assert_eq!(
                s.org_for_number(&number("+14155550177"))
                    .await
                    .expect("route"),
                None
            );
            // Replacing frees the numbers no longer listed.
            let fewer = iace_domain::TelephonySettings {
                numbers: vec![number("+14155550101")],
                ..settings.clone()
            };
            s.set_telephony(a.id, &fewer, fixtures::now())
                .await
                .expect("replace");
            assert_eq!(s.telephony(a.id).await.expect("get"), fewer);
            s.set_telephony(b.id, &grab, fixtures::now())
                .await
                .expect("the freed number can be taken");
            assert_eq!(
                s.org_for_number(&number("+14155550100"))
                    .await
                    .expect("route"),
                Some(b.id)
            );
            assert!(matches!(
                s.telephony(OrgId::new()).await,
                Err(StoreError::NotFound { .. })
            ));
        }
    );
    case!(make, "orgs: duplicate id is AlreadyExists", |s| {
        let org = fixtures::org();
        s.create(&org).await.expect("create");
        assert!(matches!(
            s.create(&org).await,
            Err(StoreError::AlreadyExists { .. })
        ));
    });
    case!(make, "orgs: plan and billing ref", |s| {
        let (a, b) = (fixtures::org(), fixtures::org());
        s.create(&a).await.expect("create a");
        s.create(&b).await.expect("create b");
        s.set_plan(a.id, Plan::Enterprise).await.expect("plan");
        assert_eq!(s.get(a.id).await.expect("get").plan, Plan::Enterprise);
        assert_eq!(
            s.get(b.id).await.expect("get").plan,
            Plan::Free,
            "other orgs untouched"
        );
        s.set_billing_ref(a.id, "cus_123")
            .await
            .expect("billing ref");
        let found = s.find_by_billing_ref("cus_123").await.expect("find");
        assert_eq!(found.map(|o| o.id), Some(a.id));
        assert_eq!(s.find_by_billing_ref("cus_none").await.expect("find"), None);
        let taken = s.set_billing_ref(b.id, "cus_123").await;
        assert!(
            matches!(
                taken,
                Err(StoreError::AlreadyExists {
                    field: "billing_customer_ref",
                    ..
                })
            ),
            "{taken:?}"
        );
    });
}
