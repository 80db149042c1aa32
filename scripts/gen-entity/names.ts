/**
 * Entity names: every spelling the generated code needs, from one name given in any common form
 * (`order-line`, `orderLine`, `order_line`, `OrderLine`, or a plural of these).
 */

export interface WordForms {
  /** Lower-case words: ['order', 'line']. */
  words: string[];
  kebab: string;
  camel: string;
  pascal: string;
  snake: string;
  /** Words joined by spaces, for messages: 'order line'. */
  label: string;
}

export interface EntityNames {
  /** The folder under app/ and tests/: the name as given, in kebab case (`orderLines` → `order-lines`). */
  folder: string;
  singular: WordForms;
  plural: WordForms;
}

/** Irregular plurals of English words likely to name an entity; everything else follows the rules below. */
const IRREGULAR: Record<string, string> = {
  person: 'people',
  child: 'children',
  man: 'men',
  woman: 'women',
  mouse: 'mice',
  goose: 'geese',
  foot: 'feet',
  tooth: 'teeth',
  ox: 'oxen',
  leaf: 'leaves',
  life: 'lives',
  knife: 'knives',
  wife: 'wives',
  half: 'halves',
  shelf: 'shelves',
  thief: 'thieves',
  wolf: 'wolves',
  calf: 'calves',
  analysis: 'analyses',
  basis: 'bases',
  crisis: 'crises',
  thesis: 'theses',
  diagnosis: 'diagnoses',
  axis: 'axes',
  index: 'indices',
  matrix: 'matrices',
  vertex: 'vertices',
  criterion: 'criteria',
  phenomenon: 'phenomena',
  datum: 'data',
  medium: 'media',
  curriculum: 'curricula',
  quiz: 'quizzes',
  hero: 'heroes',
  potato: 'potatoes',
  tomato: 'tomatoes',
  echo: 'echoes',
  veto: 'vetoes',
};
const IRREGULAR_SINGULAR = Object.fromEntries(Object.entries(IRREGULAR).map(([one, many]) => [many, one]));

/**
 * Words whose singular and plural are the same. They cannot name an entity: the generated code needs
 * distinct names for one item and for the collection (`news` → name it `news-item`).
 */
const UNCOUNTABLE = new Set([
  'news', 'series', 'species', 'data', 'metadata', 'information', 'equipment', 'feedback', 'software',
  'hardware', 'staff', 'sheep', 'fish', 'deer', 'aircraft', 'media', 'music', 'money', 'rice', 'advice',
  'furniture', 'luggage', 'baggage', 'traffic', 'weather', 'knowledge', 'evidence', 'research', 'police',
]);

/** Plurals the suffix rules would read wrong: -ie words (movies → movie, not movy) and -u words (menus → menu). */
const IE_PLURALS = new Set([
  'movies', 'cookies', 'zombies', 'selfies', 'rookies', 'calories', 'pies', 'ties', 'lies', 'brownies', 'smoothies',
  'genies', 'prairies', 'hippies', 'sorties', 'goalies', 'newbies',
]);
const U_PLURALS = new Set(['menus', 'gurus', 'emus', 'tutus', 'haikus', 'gnus', 'tofus', 'sudokus']);

/** The plural of one lower-case English word. */
export function pluralize(word: string): string {
  if (UNCOUNTABLE.has(word)) return word;
  const irregular = IRREGULAR[word];
  if (irregular) return irregular;
  if (IRREGULAR_SINGULAR[word]) return word;
  if (/[^aeiou]y$/.test(word)) return `${word.slice(0, -1)}ies`;
  if (/(s|x|z|ch|sh)$/.test(word)) return `${word}es`;
  return `${word}s`;
}

/**
 * The singular of one lower-case English word; a word that is already singular comes back unchanged.
 * Rules cover regular words; a plural they get wrong (`caches`, `aliases`) is avoided by giving the singular.
 */
export function singularize(word: string): string {
  if (UNCOUNTABLE.has(word)) return word;
  const irregular = IRREGULAR_SINGULAR[word];
  if (irregular) return irregular;
  if (IRREGULAR[word]) return word;
  if (IE_PLURALS.has(word) || U_PLURALS.has(word)) return word.slice(0, -1);
  if (/[^aeiou]ies$/.test(word)) return `${word.slice(0, -3)}y`;
  if (/(ss|x|z|ch|sh|us)es$/.test(word)) return word.slice(0, -2);
  // status, bus, address, analysis, canvas: singular words that end in s.
  if (/(ss|us|is|as)$/.test(word)) return word;
  if (word.length > 2 && word.endsWith('s')) return word.slice(0, -1);
  return word;
}

/** What is wrong with a name (undefined when it is well formed). */
function malformed(name: string): string | undefined {
  if (!name) return 'the name is empty';
  if (!/^[A-Za-z][A-Za-z0-9]*([-_][A-Za-z0-9]+)*$/.test(name)) {
    return 'use letters and digits, words separated by "-" or "_" or camelCase, starting with a letter (e.g. order-line)';
  }
  if (/[a-z][A-Z]/.test(name) && /[-_]/.test(name)) return 'mix of camelCase and separators; use one style (order-line or orderLine)';
  return undefined;
}

/** Splits `order-line`, `order_line`, `orderLine`, `OrderLine` into ['order', 'line']. */
export function splitWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[\s_-]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

const capital = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);

export function wordForms(words: string[]): WordForms {
  return {
    words,
    kebab: words.join('-'),
    camel: words.map((w, i) => (i === 0 ? w : capital(w))).join(''),
    pascal: words.map(capital).join(''),
    snake: words.join('_'),
    label: words.join(' '),
  };
}

export class NameError extends Error {}

/** Keeps every generated line within the lint's 130 columns (and table, index and constraint names short). */
export const MAX_NAME = 32;

/**
 * Every form of an entity name. The last word carries the number: `order-lines` and `order-line`
 * name the same entity. Throws NameError for a malformed name or an uncountable last word.
 */
export function entityNames(name: string): EntityNames {
  const problem = malformed(name);
  if (problem) throw new NameError(`invalid entity name '${name}': ${problem}`);
  const words = splitWords(name);
  if (words.some((w) => !/^[a-z]/.test(w))) {
    throw new NameError(`invalid entity name '${name}': every word must start with a letter`);
  }
  const last = words.at(-1) as string;
  const one = singularize(last);
  const many = pluralize(one);
  if (one === many) {
    throw new NameError(
      `invalid entity name '${name}': '${last}' has no distinct singular and plural; use e.g. '${[...words.slice(0, -1), last, 'item'].join('-')}'`,
    );
  }
  const singular = wordForms([...words.slice(0, -1), one]);
  const plural = wordForms([...words.slice(0, -1), many]);
  if (plural.kebab.length > MAX_NAME) throw new NameError(`invalid entity name '${name}': longer than ${MAX_NAME} characters in the plural`);
  return { folder: words.join('-'), singular, plural };
}
