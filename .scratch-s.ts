import { loadSettings } from '/work/main/app/core/settings/index.js';
const tries: Record<string,string>[] = [
 {PORT:'abc'},{LOG_LEVEL:'loud'},{APP_ENV:'bogus'},{DATABASE_URL:'mysql://x'},{JWT_SECRET:'short-secret-value'},
 {APP_ENV:'production'},{APP_ENV:'staging', DATABASE_URL:''},{JWT_ALGORITHM:'RS256', JWT_PRIVATE_KEY:'x'},{SEED_ADMIN_EMAIL:'a@b.c'},
 {PORT:'70000'},{TRUST_PROXY:'maybe'},{PORT:'1.5'}, {SEED_ADMIN_EMAIL:'a@b.c', SEED_ADMIN_PASSWORD:'short'},
];
for (const e of tries) { try { const s = loadSettings(e); console.log('OK', e, s.PORT); } catch (err) { console.log(JSON.stringify(e), '=>', (err as Error).message); } }
const s = loadSettings({TRUST_PROXY:'true', DOCS_ENABLED:'false', PORT:'8080', BODY_LIMIT: '2048'});
console.log(s.TRUST_PROXY, s.DOCS_ENABLED, s.PORT, typeof s.PORT, s.BODY_LIMIT);
const s2 = loadSettings({TRUST_PROXY:'1', DOCS_ENABLED:'0'});
console.log(s2.TRUST_PROXY, s2.DOCS_ENABLED);
