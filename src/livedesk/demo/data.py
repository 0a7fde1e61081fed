"""The demo brand's fixed content: catalogue, staff, stores, names and chat scripts.

Everything here is plain data. ``seed.py`` turns it into rows (with a seeded random generator
for the shoppers and their history), ``art.py`` draws the avatars and product pictures, and the
shop page reads the catalogue from ``/demo/catalogue.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from livedesk.models import Role

BRAND_SLUG = "hanami-beauty"
BRAND_NAME = "Hanami Beauty"
BRAND_NAME_JA = "花見ビューティー"
CURRENCY = "JPY"

Category = Literal["skincare", "makeup", "fragrance", "apparel", "accessories"]
Topic = Literal["skincare", "makeup", "fragrance", "styling", "sizing"]
Shape = Literal[
    "dropper",
    "bottle",
    "jar",
    "tube",
    "sachet",
    "compact",
    "lipstick",
    "pen",
    "palette",
    "perfume",
    "mist",
    "dress",
    "coat",
    "trousers",
    "stole",
    "cardigan",
    "scarf",
    "tote",
]


@dataclass(frozen=True)
class Product:
    sku: str
    category: Category
    name_ja: str
    name_en: str
    size: str
    price: int  # JPY, tax included; JPY has no minor unit, so this is also the minor amount
    description_ja: str
    description_en: str
    shape: Shape
    colour: str  # the product's own colour in its picture
    accent: str

    @property
    def image_url(self) -> str:
        return f"/demo/products/{self.sku.lower()}.svg"

    @property
    def topics(self) -> tuple[Topic, ...]:
        """What an advisor needs to know to advise on it (matched against staff skills)."""
        return _TOPICS[self.category]


_TOPICS: dict[Category, tuple[Topic, ...]] = {
    "skincare": ("skincare",),
    "makeup": ("makeup",),
    "fragrance": ("fragrance",),
    "apparel": ("styling", "sizing"),
    "accessories": ("styling",),
}


CATALOGUE: tuple[Product, ...] = (
    Product("HB-SK-001", "skincare", "桜グロウ セラム", "Sakura Glow Serum", "30 mL", 6600,
            "桜葉エキスとナイアシンアミド配合。くすみを払い、内側から光るようなつや肌へ。",
            "Sakura leaf extract and niacinamide for a clear, lit-from-within glow.",
            "dropper", "#f4b6c2", "#b03a5b"),
    Product("HB-SK-002", "skincare", "米ぬか クレンジングオイル", "Rice Bran Cleansing Oil", "150 mL", 3300,
            "米ぬか油がメイクを素早くオフ。洗い上がりはしっとりやわらか。",
            "Rice bran oil melts make-up away and leaves skin soft, never tight.",
            "bottle", "#f3dfa2", "#8a6d1d"),
    Product("HB-SK-003", "skincare", "椿 モイスチャークリーム", "Camellia Moisture Cream", "40 g", 5500,
            "五島列島の椿油で乾燥から守る、濃密なのにべたつかないクリーム。",
            "Camellia oil from the Goto Islands: rich protection that never feels heavy.",
            "jar", "#e8a0a8", "#7d2e3b"),
    Product("HB-SK-004", "skincare", "緑茶 バランシングローション", "Green Tea Balancing Lotion",
            "150 mL", 4400,
            "宇治茶エキスが皮脂バランスを整える、みずみずしい化粧水。",
            "Uji green tea extract balances oily zones in a light, watery lotion.",
            "bottle", "#b9d8a8", "#3f6b2a"),
    Product("HB-SK-005", "skincare", "柚子 ブライトニングマスク", "Yuzu Brightening Mask", "5 sheets", 2750,
            "柚子とビタミンCで、特別な日の前夜に明るい肌へ。",
            "Yuzu and vitamin C sheet masks for the night before a big day.",
            "sachet", "#f6d365", "#9a6a00"),
    Product("HB-SK-006", "skincare", "UV デイプロテクター SPF50+", "UV Day Protector SPF50+", "50 g", 3850,
            "白浮きしない軽いつけ心地。化粧下地としても使えます。",
            "Invisible, weightless sun protection that doubles as a make-up base.",
            "tube", "#cfe3f2", "#2f5d80"),
    Product("HB-MU-001", "makeup", "シルクヴェール ファンデーション", "Silk Veil Foundation", "30 mL", 5280,
            "薄く軽く、素肌のような仕上がり。全12色。",
            "Sheer, light coverage that looks like skin. Twelve shades.",
            "bottle", "#e9c3a6", "#7a4b2c"),
    Product("HB-MU-002", "makeup", "紅 リップスティック 03 プラム", "Beni Lipstick 03 Plum", "3.5 g", 3520,
            "伝統の紅色から生まれた、落ち着いたプラムの一本。",
            "A quiet plum shade drawn from traditional beni red.",
            "lipstick", "#8e2c48", "#2b2b2b"),
    Product("HB-MU-003", "makeup", "朝露 チーク", "Morning Dew Cheek Blush", "4 g", 3080,
            "朝露のようなみずみずしい血色感をひと刷けで。",
            "A dewy flush of colour in one sweep of the brush.",
            "compact", "#f2a39b", "#3a3a3a"),
    Product("HB-MU-004", "makeup", "墨 リキッドアイライナー", "Sumi Liquid Eyeliner", "0.5 mL", 2420,
            "書道筆から着想した極細の筆先。にじみにくい墨色。",
            "A calligraphy-fine brush tip in smudge-proof ink black.",
            "pen", "#1f1f1f", "#c9a45c"),
    Product("HB-MU-005", "makeup", "四季 アイパレット", "Shiki Eye Palette", "4 × 1.5 g", 6160,
            "春夏秋冬をイメージした4色。重ねても濁らない発色。",
            "Four shades for the four seasons that layer without muddying.",
            "palette", "#d9a5b3", "#3a3a3a"),
    Product("HB-FR-001", "fragrance", "オードパルファム 夜桜", "Yozakura Eau de Parfum", "50 mL", 12100,
            "夜桜の下を歩くような、やわらかなフローラルムスク。",
            "A soft floral musk, like walking under cherry blossoms at night.",
            "perfume", "#d7b4e0", "#4b2a5a"),
    Product("HB-FR-002", "fragrance", "ヒノキ ボディミスト", "Hinoki Body Mist", "100 mL", 4180,
            "檜風呂の清々しさをまとう、ウッディなボディミスト。",
            "The clean woody calm of a hinoki bath, as a body mist.",
            "mist", "#e6d3b3", "#6b4f2a"),
    Product("HB-FR-003", "fragrance", "金木犀 ハンドクリーム", "Kinmokusei Hand Cream", "50 g", 1980,
            "秋の金木犀の香り。さらっと馴染むハンドクリーム。",
            "Autumn osmanthus in a hand cream that sinks straight in.",
            "tube", "#f7b267", "#8a4b00"),
    Product("HB-AP-001", "apparel", "リネン シャツワンピース", "Linen Shirt Dress", "S–L", 16500,
            "洗いをかけたフレンチリネン。ベルト付きで2通りに着られます。",
            "Washed French linen with a tie belt: wear it two ways.",
            "dress", "#c9d6df", "#52616b"),
    Product("HB-AP-002", "apparel", "ウールブレンド コクーンコート", "Wool-blend Cocoon Coat", "S–L", 38500,
            "丸みのあるシルエットで体型を選ばない、軽くて暖かいコート。",
            "A rounded, forgiving silhouette that is warm yet light.",
            "coat", "#b08968", "#5a3e2b"),
    Product("HB-AP-003", "apparel", "テーパードパンツ", "Tapered Trousers", "XS–XL", 12100,
            "ストレッチ素材でセンタープレス入り。通勤にも休日にも。",
            "Stretch fabric with a pressed crease, for work and weekends.",
            "trousers", "#3d4a5c", "#1d2633"),
    Product("HB-AP-004", "apparel", "カシミヤ ストール", "Cashmere Stole", "70 × 190 cm", 19800,
            "内モンゴル産カシミヤ100%。肩掛けにもひざ掛けにも。",
            "Pure Inner Mongolian cashmere, for shoulders or laps.",
            "stole", "#d8c3a5", "#8e7b5c"),
    Product("HB-AP-005", "apparel", "ファインニット カーディガン", "Fine-knit Cardigan", "S–L", 13200,
            "ハイゲージの綿シルク。一年中使える一枚。",
            "Fine-gauge cotton silk: one for every season.",
            "cardigan", "#e7c6c0", "#9b5d55"),
    Product("HB-AC-001", "accessories", "シルク 風呂敷スカーフ", "Silk Furoshiki Scarf", "88 × 88 cm", 8800,
            "風呂敷の柄をスカーフに。包んでも巻いても。",
            "A furoshiki pattern on silk: wrap a gift or wear it.",
            "scarf", "#f1c0b9", "#2a4d69"),
    Product("HB-AC-002", "accessories", "レザートート", "Leather Tote", "A4", 24200,
            "栃木レザーの一枚革。使うほどに艶が増します。",
            "Single-piece Tochigi leather that deepens with use.",
            "tote", "#a0522d", "#5c2e14"),
)  # fmt: skip

PRODUCTS_BY_SKU = {p.sku: p for p in CATALOGUE}
FEATURED_SKU = "HB-SK-001"


@dataclass(frozen=True)
class Avatar:
    background: str
    skin: str
    hair: str
    hair_style: Literal["bob", "long", "short", "bun", "wavy"]
    top: str


@dataclass(frozen=True)
class StaffProfile:
    key: str
    role: Role
    email: str
    display_name: str
    display_name_en: str
    team: str | None
    skills: tuple[str, ...]
    languages: tuple[str, ...]
    timezone: str
    bio: str
    bio_en: str
    avatar: Avatar

    @property
    def photo_url(self) -> str:
        return f"/demo/avatars/{self.key}.svg"


@dataclass(frozen=True)
class TeamProfile:
    name: str
    description: str


TEAMS = (
    TeamProfile("Beauty", "Skincare, make-up and fragrance advisors / ビューティーアドバイザー"),
    TeamProfile("Fashion", "Styling and sizing advisors / スタイリスト"),
)

STAFF: tuple[StaffProfile, ...] = (
    StaffProfile(
        "naoko-kobayashi", Role.ADMIN, "naoko.kobayashi@hanami.example", "小林 直子", "Naoko Kobayashi",
        None, (), ("ja", "en"), "Asia/Tokyo",
        "オンライン接客の運営を担当しています。",
        "Runs Hanami's online consultation service.",
        Avatar("#dfe7fd", "#f1c9a5", "#2b2222", "bun", "#3d405b"),
    ),
    StaffProfile(
        "yumi-yamamoto", Role.SUPERVISOR, "yumi.yamamoto@hanami.example", "山本 由美", "Yumi Yamamoto",
        "Beauty", ("skincare", "makeup"), ("ja", "en"), "Asia/Tokyo",
        "ビューティーチームのスーパーバイザー。店頭経験15年。",
        "Supervises the Beauty team; fifteen years behind the counter.",
        Avatar("#fde2e4", "#eac1a0", "#3b2a25", "bob", "#6d597a"),
    ),
    StaffProfile(
        "ken-nakamura", Role.SUPERVISOR, "ken.nakamura@hanami.example", "中村 健", "Ken Nakamura",
        "Fashion", ("styling",), ("ja",), "Asia/Tokyo",
        "ファッションチームのスーパーバイザーです。",
        "Supervises the Fashion team.",
        Avatar("#e2ece9", "#e0b48f", "#1e1e1e", "short", "#355070"),
    ),
    StaffProfile(
        "sakura-tanaka", Role.ADVISOR, "sakura.tanaka@hanami.example", "田中 さくら", "Sakura Tanaka",
        "Beauty", ("skincare", "makeup"), ("ja", "en"), "Asia/Tokyo",
        "敏感肌のスキンケアが得意です。肌質に合わせたシンプルなケアをご提案します。",
        "Specialises in sensitive skin and simple routines that suit your skin type.",
        Avatar("#ffe5ec", "#f3cfb3", "#3a2418", "long", "#e5989b"),
    ),
    StaffProfile(
        "misaki-sato", Role.ADVISOR, "misaki.sato@hanami.example", "佐藤 美咲", "Misaki Sato",
        "Beauty", ("makeup", "fragrance"), ("ja",), "Asia/Tokyo",
        "パーソナルカラー診断をもとに、似合う色と香りを一緒に探します。",
        "Finds your colours and your scent, starting from a personal colour analysis.",
        Avatar("#f3e8ff", "#efc8a8", "#5a3825", "bob", "#9d4edd"),
    ),
    StaffProfile(
        "hina-suzuki", Role.ADVISOR, "hina.suzuki@hanami.example", "鈴木 陽菜", "Hina Suzuki",
        "Beauty", ("skincare", "fragrance"), ("ja", "en"), "Asia/Tokyo",
        "エイジングケアと香りのレイヤリングならお任せください。",
        "Ask her about age-care routines and layering fragrances.",
        Avatar("#fff1d6", "#f0c7a0", "#2d1b12", "wavy", "#f4a261"),
    ),
    StaffProfile(
        "emma-clarke", Role.ADVISOR, "emma.clarke@hanami.example", "Emma Clarke", "Emma Clarke",
        "Beauty", ("skincare", "makeup"), ("en", "ja"), "Europe/London",
        "ロンドンから英語と日本語でご案内します。海外在住の方もお気軽に。",
        "Advises in English and Japanese from London, for shoppers abroad.",
        Avatar("#e0f2f1", "#f6d7c3", "#b5651d", "wavy", "#2a9d8f"),
    ),
    StaffProfile(
        "ren-takahashi", Role.ADVISOR, "ren.takahashi@hanami.example", "高橋 蓮", "Ren Takahashi",
        "Fashion", ("styling", "sizing"), ("ja", "en"), "Asia/Tokyo",
        "骨格タイプに合わせたコーディネートとサイズ選びをお手伝いします。",
        "Helps with outfits for your body shape and with choosing the right size.",
        Avatar("#e8eddf", "#e3b68f", "#141414", "short", "#4a4e69"),
    ),
    StaffProfile(
        "oliver-hughes", Role.ADVISOR, "oliver.hughes@hanami.example", "Oliver Hughes", "Oliver Hughes",
        "Fashion", ("styling", "sizing"), ("en", "ja"), "Europe/London",
        "ロンドンのスタイリスト。日英のサイズ換算もご相談ください。",
        "London-based stylist; happy to convert between UK and Japanese sizes.",
        Avatar("#e3f2fd", "#f2d0b5", "#6b4226", "short", "#264653"),
    ),
)  # fmt: skip

STORES = ("Hanami Ginza", "Hanami Shinjuku", "Hanami Osaka Umeda", "Hanami Kyoto Sanjo")

# (kanji, romaji) pairs; shoppers' display names are written the Japanese way, family name first.
FAMILY_NAMES = (
    ("佐々木", "Sasaki"), ("山田", "Yamada"), ("松本", "Matsumoto"), ("井上", "Inoue"),
    ("木村", "Kimura"), ("林", "Hayashi"), ("清水", "Shimizu"), ("山崎", "Yamazaki"),
    ("森", "Mori"), ("池田", "Ikeda"), ("橋本", "Hashimoto"), ("阿部", "Abe"),
    ("石川", "Ishikawa"), ("前田", "Maeda"), ("藤田", "Fujita"), ("小川", "Ogawa"),
    ("岡田", "Okada"), ("後藤", "Goto"), ("長谷川", "Hasegawa"), ("村上", "Murakami"),
)  # fmt: skip
GIVEN_NAMES = (
    ("愛", "Ai"), ("結衣", "Yui"), ("美月", "Mizuki"), ("彩", "Aya"), ("優子", "Yuko"),
    ("真由", "Mayu"), ("千尋", "Chihiro"), ("奈々", "Nana"), ("里奈", "Rina"), ("恵", "Megumi"),
    ("由佳", "Yuka"), ("明日香", "Asuka"), ("翔太", "Shota"), ("大輔", "Daisuke"), ("拓海", "Takumi"),
    ("美穂", "Miho"), ("香織", "Kaori"), ("舞", "Mai"), ("智子", "Tomoko"), ("悠人", "Yuto"),
)  # fmt: skip
FOREIGN_NAMES = (
    "Charlotte Evans", "Sophie Turner", "Amelia Wright", "Grace Robinson",
    "Isla Thompson", "Lucy Walker", "Hannah Price", "Daniel Cooper",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")

SKIN_TYPES = ("dry", "oily", "combination", "sensitive", "normal")
SIZES = ("XS", "S", "M", "L", "XL")

# A consultation's chat, per topic and language. "product" lines become product cards of a
# catalogue item that fits the topic.
Line = tuple[Literal["shopper", "staff", "product"], str]

SCRIPTS: dict[tuple[Topic, str], tuple[Line, ...]] = {
    ("skincare", "ja"): (
        ("shopper", "最近乾燥が気になっていて、保湿力の高い美容液を探しています。"),
        ("staff", "ありがとうございます。普段のお手入れと、肌質を教えていただけますか？"),
        ("shopper", "混合肌で、冬になると頬がつっぱります。化粧水だけで済ませています。"),
        ("staff", "化粧水のあとに美容液をひとつ足すだけで変わりますよ。こちらがおすすめです。"),
        ("product", ""),
        ("shopper", "ありがとうございます、試してみます！"),
    ),
    ("skincare", "en"): (
        ("shopper", "My skin feels tight since I moved here. Is there a serum you'd recommend?"),
        (
            "staff",
            "Happy to help! What does your routine look like now, and how would you describe your skin?",
        ),
        ("shopper", "Combination, a bit sensitive. Cleanser and moisturiser only."),
        (
            "staff",
            "Adding one serum after cleansing should help a lot. This one is gentle on sensitive skin.",
        ),
        ("product", ""),
        ("shopper", "Lovely, thank you!"),
    ),
    ("makeup", "ja"): (
        ("shopper", "結婚式に参列するので、華やかすぎないメイクを相談したいです。"),
        ("staff", "素敵ですね。ドレスのお色は決まっていますか？"),
        ("shopper", "ネイビーのドレスです。"),
        ("staff", "ネイビーには落ち着いたプラム系のリップがよく映えます。"),
        ("product", ""),
        ("shopper", "イメージが湧きました。ありがとうございます。"),
    ),
    ("makeup", "en"): (
        ("shopper", "I'm looking for a foundation that doesn't look heavy on camera."),
        ("staff", "Of course. Do you prefer a dewy or a matte finish?"),
        ("shopper", "Dewy, but not shiny."),
        ("staff", "Then I'd start with this one; let's match the shade on the call."),
        ("product", ""),
        ("shopper", "Perfect, that shade looks right."),
    ),
    ("fragrance", "ja"): (
        ("shopper", "母へのプレゼントに香りのものを探しています。"),
        ("staff", "お母様はどんな香りがお好きですか？フローラル、ウッディなど。"),
        ("shopper", "やわらかい花の香りが好きだと思います。"),
        ("staff", "それでしたら、こちらはいかがでしょう。ギフト包装も承ります。"),
        ("product", ""),
        ("shopper", "これにします。包装もお願いします。"),
    ),
    ("fragrance", "en"): (
        ("shopper", "I'd like a scent for everyday wear, nothing too strong."),
        ("staff", "A light woody or a soft floral could suit. Which do you usually reach for?"),
        ("shopper", "Woody, I think."),
        ("staff", "This one has the calm of a hinoki bath; it's very wearable."),
        ("product", ""),
        ("shopper", "Sounds lovely, I'll try it."),
    ),
    ("styling", "ja"): (
        ("shopper", "通勤にも休日にも使えるコーディネートを相談したいです。"),
        ("staff", "ありがとうございます。普段よく着るお色やアイテムはありますか？"),
        ("shopper", "紺やグレーが多いです。"),
        ("staff", "手持ちの紺に合わせやすい一枚をご提案しますね。"),
        ("product", ""),
        ("shopper", "合わせ方がよく分かりました！"),
    ),
    ("styling", "en"): (
        ("shopper", "I need an outfit for a work trip to Tokyo in autumn."),
        ("staff", "Great! Smart or relaxed? And will you be walking a lot?"),
        ("shopper", "Smart-casual, lots of walking."),
        ("staff", "Layers work best in Tokyo autumn. Here's a piece that goes with everything."),
        ("product", ""),
        ("shopper", "That's exactly what I had in mind."),
    ),
    ("sizing", "ja"): (
        ("shopper", "普段Mサイズですが、こちらのコートはどのサイズが良いでしょうか？"),
        ("staff", "身長と、中に厚手のニットを着る予定があるか教えてください。"),
        ("shopper", "158cmで、ニットを着ることが多いです。"),
        ("staff", "ゆったりした型なので、Mで十分です。袖丈もちょうど良いと思います。"),
        ("product", ""),
        ("shopper", "安心しました。Mで注文します。"),
    ),
    ("sizing", "en"): (
        ("shopper", "I'm a UK 12. Which Japanese size should I order?"),
        ("staff", "A UK 12 is usually an L in our sizing. How do you like the fit?"),
        ("shopper", "Relaxed, not tight."),
        ("staff", "Then L is right for this one; it has a relaxed cut."),
        ("product", ""),
        ("shopper", "Thanks, ordering the L."),
    ),
}

NOTES: dict[Topic, str] = {
    "skincare": "Dry cheeks in winter; suggested adding a serum. Follow up in 4 weeks.",
    "makeup": "Event look; matched shade on camera. Prefers dewy finish.",
    "fragrance": "Gift purchase; likes soft florals/woody. Offered gift wrapping.",
    "styling": "Navy/grey wardrobe; suggested versatile layers.",
    "sizing": "Relaxed fit preferred; confirmed size on call.",
}
