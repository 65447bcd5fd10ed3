// Translated strings, rendered by the template tag into a JSON block (docs/widget.md).

export class Translations {
  constructor(strings, language) {
    this.strings = strings;
    this.language = language;
    this.pluralRules = new Intl.PluralRules(language);
    this.numbers = new Intl.NumberFormat(language);
  }

  get(key) {
    return this.strings[key] ?? key;
  }

  state(name) {
    return this.strings.states?.[name] ?? name;
  }

  level(name) {
    return this.strings.levels?.[name] ?? name;
  }

  // Gettext chose a form of each plural message for a set of sample counts; the right form for
  // `count` is that of a sample in the same CLDR plural category. `values` fill the message's
  // other placeholders (`%(actor)s`), in one pass: a value is never read as a placeholder.
  plural(key, count, values = {}) {
    const { forms = [], samples = {} } = this.strings.plurals?.[key] ?? {};
    let index = samples[String(count)];
    if (index === undefined) {
      const category = this.pluralRules.select(count);
      const sample = Object.keys(samples).find(
        (n) => this.pluralRules.select(Number(n)) === category,
      );
      index = samples[sample];
    }
    return (forms[index] ?? key).replace(/%\((\w+)\)s/g, (placeholder, name) => {
      if (name === "count") return this.numbers.format(count);
      return Object.hasOwn(values, name) ? String(values[name]) : placeholder;
    });
  }

  number(value) {
    return this.numbers.format(value);
  }
}

export function readTranslations(root) {
  const block = root.querySelector('script[type="application/json"]');
  const strings = block ? JSON.parse(block.textContent) : {};
  const language = root.dataset.language || document.documentElement.lang || navigator.language;
  return new Translations(strings, language);
}
