"""Vocabulary for generated lakes: names, places, browsers and title words.

Small fixed lists combined at random give millions of distinct titles and names; a few entries
carry accents so the writers' \\u escaping is exercised as in the real files.
"""

# fmt: off
FIRST_NAMES_F = (
    "Lily", "Maia", "Jacqueline", "Chloe", "Kate", "Tegan", "Ava", "Jayden", "Aleena", "Sara",
    "Layla", "Anabelle", "Celeste", "Emily", "Sophia", "Morgan", "Rylan", "Elena", "Zoé", "Harper",
)
FIRST_NAMES_M = (
    "Kevin", "Ryan", "Jacob", "Mohammad", "Lucas", "Aiden", "Matthew", "Wyatt", "Cienna", "Jordan",
    "Connar", "Dominick", "Liam", "Noah", "Ethan", "Mason", "Logan", "Cristian", "André", "Samuel",
)
LAST_NAMES = (
    "Arellano", "Burke", "Lynch", "Koch", "Cuevas", "Levine", "Harrell", "Smith", "Williams", "Johnson",
    "Roth", "Moreno", "Garrison", "Robinson", "Cruz", "Rodriguez", "Thompson", "Wolfe", "Moore", "Núñez",
    "Fox", "Keller", "Powell", "Hayes", "Bennett", "Ortiz", "Reyes", "Patel", "Nguyen", "Schmidt",
)
LOCATIONS = (
    "San Francisco-Oakland-Hayward, CA", "Portland-South Portland, ME", "Lansing-East Lansing, MI",
    "Chicago-Naperville-Elgin, IL-IN-WI", "Atlanta-Sandy Springs-Roswell, GA",
    "Waterloo-Cedar Falls, IA", "Tampa-St. Petersburg-Clearwater, FL", "Houston-The Woodlands-Sugar Land, TX",
    "Harrisburg-Carlisle, PA", "New York-Newark-Jersey City, NY-NJ-PA", "Janesville-Beloit, WI",
    "Birmingham-Hoover, AL", "Red Bluff, CA", "Detroit-Warren-Dearborn, MI", "Winston-Salem, NC",
    "Los Angeles-Long Beach-Anaheim, CA", "Seattle-Tacoma-Bellevue, WA", "Dallas-Fort Worth-Arlington, TX",
    "Phoenix-Mesa-Scottsdale, AZ", "Boston-Cambridge-Newton, MA-NH",
)
USER_AGENTS = (
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.125 Safari/537.36"',
    '"Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36"',
    '"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36"',
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    '"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53"',
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:31.0) Gecko/20100101 Firefox/31.0",
    '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36"',
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.77.4 (KHTML, like Gecko) Version/7.0.5 Safari/537.77.4"',
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:31.0) Gecko/20100101 Firefox/31.0",
)
ARTIST_PLACES = (
    "Nashville, TN.", "London, England", "New York, NY", "Los Angeles, CA", "Chicago, IL", "Berlin, Germany",
    "Paris, France", "Stockholm, Sweden", "Kingston, Jamaica", "Toronto, Ontario, Canada", "Detroit, MI",
    "Seattle, WA", "Austin, TX", "Montréal, Québec", "São Paulo, Brazil", "Reykjavík, Iceland",
    "Melbourne, Australia", "Dublin, Ireland", "Memphis, TN", "Glasgow, Scotland",
)
TITLE_WORDS = (
    "love", "night", "heart", "fire", "rain", "dream", "blue", "road", "home", "light", "dance", "time",
    "wild", "gold", "river", "summer", "shadow", "city", "ghost", "star", "ocean", "stone", "black",
    "angel", "sun", "moon", "storm", "song", "lonely", "crazy", "sweet", "broken", "little", "baby",
    "forever", "tonight", "paradise", "highway", "diamond", "silver", "thunder", "whisper", "echo", "mirror",
    "garden", "winter", "soul", "blood", "rose", "train", "world", "kiss", "mañana", "café", "señor",
    "déjà", "vu", "über", "noche", "corazón", "amour", "vie", "matins", "setanta", "tonne", "ten",
)
ARTIST_WORDS = (
    "Chase", "Status", "Gloriana", "Fu", "Elena", "Echo", "Velvet", "Static", "Lions", "Owls", "Parade",
    "Mirrors", "Orchestra", "Brothers", "Sisters", "Kings", "Machine", "Collective", "Society", "Riot",
    "Harbor", "Atlas", "Neon", "Prophets", "Saints", "Wolves", "Crystal", "Radio", "Empire", "Garden",
    "Björk", "Sigur", "Rós", "Motörhead", "Beyoncé", "Tiësto", "Café", "Tacuba", "Calle", "Trece",
)
# fmt: on
