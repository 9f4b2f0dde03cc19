import Mustache

/// The web application's pages as Mustache templates, compiled into the binary (one file to ship). `{{name}}` is
/// HTML-escaped; the only unescaped insertion is the layout's `{{{body}}}`, which is a page this library rendered.
enum WebTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("web template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    /// Renders `page` inside the layout.
    static func render(_ page: String, title: String, context: [String: Any], layout: [String: Any]) -> String {
        let body = library.render(context, withTemplate: page) ?? ""
        var frame = layout
        frame["title"] = title
        frame["body"] = body
        return library.render(frame, withTemplate: "layout") ?? body
    }

    static let templates: [String: String] = [
        "layout": """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Quarry</title>
        <link rel="stylesheet" href="/static/app.css">
        <script src="/static/app.js" defer></script>
        </head>
        <body{{#live}} data-live="{{live}}"{{/live}}>
        <header>
        <nav aria-label="Main">
        <a class="brand" href="/stories">Quarry</a>
        {{#user}}
        <a href="/stories">Stories</a>
        <a href="/runs">Runs</a>
        <a href="/credentials">Credentials</a>
        <a href="/resources">Resources</a>
        <form method="post" action="/logout" class="signout">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <button type="submit">Sign out {{username}}</button>
        </form>
        {{/user}}
        </nav>
        </header>
        <main id="main">
        {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
        {{{body}}}
        </main>
        </body>
        </html>
        """,

        "login": """
        <h1>Sign in</h1>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <form method="post" action="/login" class="panel narrow">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <input type="hidden" name="next" value="{{next}}">
        <label for="username">User name</label>
        <input id="username" name="username" autocomplete="username" required value="{{username}}" autofocus>
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required>
        <button type="submit">Sign in</button>
        </form>
        """,

        "message": """
        <h1>{{heading}}</h1>
        <p>{{message}}</p>
        {{#link}}<p><a href="{{href}}">{{text}}</a></p>{{/link}}
        """,

        "stories": """
        <h1>Stories</h1>
        {{#hasFailures}}
        <section class="panel error" aria-labelledby="failures">
        <h2 id="failures">Story files that do not load</h2>
        {{#failures}}
        <h3>{{file}}</h3>
        <ul>{{#problems}}<li>{{#line}}line {{line}}: {{/line}}{{message}}</li>{{/problems}}</ul>
        {{/failures}}
        </section>
        {{/hasFailures}}
        {{^stories}}<p>No story is loaded. Start <code>quarry serve --stories DIR</code>{{#canEdit}} or add one below{{/canEdit}}.</p>{{/stories}}
        {{#hasStories}}
        <table>
        <thead><tr><th scope="col">Story</th><th scope="col">Agents</th><th scope="col">Last run</th><th scope="col">Form</th></tr></thead>
        <tbody>
        {{#stories}}
        <tr>
        <td><a href="{{href}}">{{name}}</a><div class="muted">{{description}}</div></td>
        <td>{{agents}}</td>
        <td>{{#lastRun}}<a href="{{href}}"><span class="status {{status}}">{{status}}</span></a> {{started}}{{/lastRun}}{{^lastRun}}never{{/lastRun}}</td>
        <td>{{#form}}<a href="{{form}}">Open form</a>{{/form}}</td>
        </tr>
        {{/stories}}
        </tbody>
        </table>
        {{/hasStories}}
        {{#canEdit}}
        <h2>Add a story</h2>
        {{> editor}}
        <h2>Import a Tines or Huginn export</h2>
        <form method="post" action="/stories/import" enctype="multipart/form-data" class="panel">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <label for="export">A Tines story export (schema_version 3) or a Huginn scenario (JSON)</label>
        <input type="file" id="export" name="export" accept=".json,application/json" required>
        <button type="submit">Import</button>
        </form>
        {{/canEdit}}
        """,

        "editor": """
        <form method="post" action="{{editorAction}}" class="panel">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <label for="source">Story (YAML or JSON)</label>
        {{#hasProblems}}
        <ul class="error" role="alert" id="problems">
        {{#problems}}<li>{{#line}}<a href="#source" data-line="{{line}}">line {{line}}</a>: {{/line}}{{message}}</li>{{/problems}}
        </ul>
        {{/hasProblems}}
        <div class="editor">
        <pre class="gutter" aria-hidden="true">{{#lines}}<span{{#problem}} class="bad" title="{{problem}}"{{/problem}}>{{number}}</span>
        {{/lines}}</pre>
        <textarea id="source" name="source" rows="24" spellcheck="false" {{#hasProblems}}aria-describedby="problems"{{/hasProblems}}>{{source}}</textarea>
        </div>
        <button type="submit">{{editorButton}}</button>
        </form>
        """,

        "story": """
        <h1>{{name}}</h1>
        <p>{{description}}</p>
        <div class="actions">
        {{#canRun}}
        {{#form}}<a class="button" href="{{form}}">Run with the form</a>{{/form}}
        <form method="post" action="{{href}}/run" class="inline">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <button type="submit">Run</button>
        </form>
        <form method="post" action="{{href}}/dry-run" class="inline">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <button type="submit">Dry run</button>
        </form>
        {{/canRun}}
        <a class="button secondary" href="{{href}}/download">Download</a>
        <a class="button secondary" href="{{href}}/export?format=tines">Tines export</a>
        <a class="button secondary" href="{{href}}/export?format=huginn">Huginn scenario</a>
        {{#canEdit}}
        <form method="post" action="{{href}}/delete" class="inline">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <button type="submit" class="danger">Delete</button>
        </form>
        {{/canEdit}}
        </div>
        {{#hasWebhooks}}<p class="muted">Webhook: {{#webhooks}}<code>POST /webhook/{{key}}/&lt;secret&gt;</code> {{/webhooks}}</p>{{/hasWebhooks}}
        <h2>Diagram</h2>
        <figure class="diagram">
        <img src="{{href}}/diagram.svg" alt="Diagram of {{name}}: {{agentCount}} agents">
        <figcaption>Entry agents have a thick border, exit agents a double one; colours show the last run.</figcaption>
        </figure>
        <h2>Last runs</h2>
        {{> runtable}}
        <h2>Source</h2>
        {{#canEdit}}{{> editor}}{{/canEdit}}
        {{^canEdit}}<pre class="source">{{source}}</pre>{{/canEdit}}
        """,

        "runtable": """
        {{^runs}}<p>No run yet.</p>{{/runs}}
        {{#hasRuns}}
        <table>
        <thead><tr><th scope="col">Run</th><th scope="col">Story</th><th scope="col">Status</th><th scope="col">Started</th><th scope="col">Took</th></tr></thead>
        <tbody>
        {{#runs}}
        <tr><td><a href="{{href}}"><code>{{short}}</code></a>{{#dryRun}} <span class="muted">dry run</span>{{/dryRun}}</td><td>{{story}}</td><td><span class="status {{status}}">{{status}}</span></td><td>{{started}}</td><td>{{took}}</td></tr>
        {{/runs}}
        </tbody>
        </table>
        {{/hasRuns}}
        """,

        "runs": """
        <h1>Runs</h1>
        <form method="get" action="/runs" class="inline filter">
        <label for="story">Story</label>
        <select id="story" name="story">
        <option value="">All stories</option>
        {{#storyOptions}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/storyOptions}}
        </select>
        <button type="submit">Show</button>
        </form>
        {{> runtable}}
        """,

        "run": """
        <h1>Run <code>{{guid}}</code></h1>
        <dl class="facts">
        <dt>Story</dt><dd><a href="{{storyHref}}">{{story}}</a></dd>
        <dt>Status</dt><dd><span class="status {{status}}" id="run-status">{{status}}</span>{{#dryRun}} (dry run){{/dryRun}}</dd>
        <dt>Started</dt><dd>{{started}}</dd>
        {{#ended}}<dt>Ended</dt><dd>{{ended}} ({{took}})</dd>{{/ended}}
        {{#error}}<dt>Error</dt><dd class="error">{{error}}</dd>{{/error}}
        </dl>
        {{#report}}
        <section aria-labelledby="report">
        <h2 id="report">Report</h2>
        {{#summary}}<p>{{summary}}</p>{{/summary}}
        {{^rows}}<p>No host found.</p>{{/rows}}
        {{#hasRows}}
        <div class="scroll">
        <table class="report">
        <thead><tr>{{#columns}}<th scope="col">{{.}}</th>{{/columns}}</tr></thead>
        <tbody>{{#rows}}<tr>{{#cells}}<td>{{.}}</td>{{/cells}}</tr>{{/rows}}</tbody>
        </table>
        </div>
        {{/hasRows}}
        </section>
        {{/report}}
        <h2>Timeline</h2>
        {{^timeline}}<p>Nothing has run yet.</p>{{/timeline}}
        {{#hasTimeline}}
        <div class="scroll">
        <table>
        <thead><tr><th scope="col">Agent</th><th scope="col">Attempt</th><th scope="col">Started</th><th scope="col">Took</th><th scope="col">Outcome</th><th scope="col">Events</th><th scope="col">Message</th></tr></thead>
        <tbody>
        {{#timeline}}<tr><td>{{agent}}</td><td>{{attempt}}</td><td>{{started}}</td><td>{{took}}</td><td><span class="status {{outcome}}">{{outcome}}</span></td><td>{{emitted}}</td><td>{{message}}</td></tr>
        {{/timeline}}
        </tbody>
        </table>
        </div>
        {{/hasTimeline}}
        <h2>Events <span class="muted">({{eventCount}})</span></h2>
        {{#events}}
        <details{{#isError}} class="error"{{/isError}}>
        <summary><code>{{agent}}</code> #{{id}} {{created}}{{#isError}} error{{/isError}}</summary>
        <pre>{{json}}</pre>
        </details>
        {{/events}}
        {{#hasPages}}<nav class="pages" aria-label="Event pages">{{#pages}}{{#current}}<strong>{{number}}</strong>{{/current}}{{^current}}<a href="?page={{number}}">{{number}}</a>{{/current}} {{/pages}}</nav>{{/hasPages}}
        """,

        "form": """
        <h1>{{title}}</h1>
        {{#description}}<p>{{description}}</p>{{/description}}
        {{#submitted}}<p class="notice" role="status">Submitted: run <code>{{submitted}}</code> started. {{#isPublic}}The result goes to the addresses the story sends it to.{{/isPublic}}</p>{{/submitted}}
        {{#hasErrors}}<p class="error" role="alert">Check the fields marked below.</p>{{/hasErrors}}
        <form method="post" action="{{action}}" class="panel narrow" novalidate>
        <input type="hidden" name="_csrf" value="{{csrf}}">
        {{#fields}}
        <div class="field{{#error}} invalid{{/error}}">
        {{#isBoolean}}
        <label><input type="checkbox" name="{{name}}" id="f-{{name}}" value="true"{{#checked}} checked{{/checked}}> {{label}}</label>
        {{/isBoolean}}
        {{^isBoolean}}
        <label for="f-{{name}}">{{label}}{{#required}} <span aria-hidden="true">*</span>{{/required}}</label>
        {{#isTextarea}}<textarea id="f-{{name}}" name="{{name}}" rows="4"{{#required}} required{{/required}}{{#error}} aria-invalid="true" aria-describedby="e-{{name}}"{{/error}}>{{value}}</textarea>{{/isTextarea}}
        {{#isSelect}}<select id="f-{{name}}" name="{{name}}"{{#required}} required{{/required}}>{{^required}}<option value=""></option>{{/required}}{{#options}}<option{{#selected}} selected{{/selected}}>{{text}}</option>{{/options}}</select>{{/isSelect}}
        {{#isInput}}<input id="f-{{name}}" name="{{name}}" type="{{inputType}}" value="{{value}}"{{#required}} required{{/required}}{{#error}} aria-invalid="true" aria-describedby="e-{{name}}"{{/error}}>{{/isInput}}
        {{/isBoolean}}
        {{#error}}<p class="field-error" id="e-{{name}}">{{error}}</p>{{/error}}
        </div>
        {{/fields}}
        {{#dryRun}}<input type="hidden" name="_dry_run" value="true">{{/dryRun}}
        <button type="submit">{{#dryRun}}Start a dry run{{/dryRun}}{{^dryRun}}Start{{/dryRun}}</button>
        </form>
        {{#publicLink}}<p class="muted">Public link (anyone holding it can start this story): <code>{{publicLink}}</code></p>{{/publicLink}}
        """,

        "secrets": """
        <h1>{{heading}}</h1>
        <p class="muted">{{explanation}}</p>
        {{^items}}<p>None yet.</p>{{/items}}
        {{#hasItems}}
        <table>
        <thead><tr><th scope="col">Name</th><th scope="col">{{valueHeading}}</th>{{#canEdit}}<th scope="col"><span class="visually-hidden">Actions</span></th>{{/canEdit}}</tr></thead>
        <tbody>
        {{#items}}
        <tr><td><code>{{name}}</code></td><td>{{#value}}<code>{{value}}</code>{{/value}}{{^value}}<span class="muted">{{hidden}}</span>{{/value}}</td>
        {{#canEdit}}<td><form method="post" action="{{deleteAction}}" class="inline"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" class="danger">Delete</button></form></td>{{/canEdit}}</tr>
        {{/items}}
        </tbody>
        </table>
        {{/hasItems}}
        {{#canEdit}}
        <h2>Create or replace</h2>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <form method="post" action="{{action}}" class="panel narrow">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <label for="name">Name</label>
        <input id="name" name="name" required pattern="[A-Za-z0-9_\\-]+" autocomplete="off">
        <label for="value">Value</label>
        {{#isSecret}}<input id="value" name="value" type="password" autocomplete="new-password" required>{{/isSecret}}
        {{^isSecret}}<textarea id="value" name="value" rows="4" required></textarea>{{/isSecret}}
        <button type="submit">Save</button>
        </form>
        {{/canEdit}}
        """,
    ]

    /// The style sheet: readable on a phone (one column, large targets) and a desktop.
    static let css = """
        :root { --fg: #1d2330; --muted: #5b6475; --line: #d6dae3; --accent: #2357c6; --bad: #b3261e; --good: #1b7a3e;
          --warn: #8a5a00; --bg: #fff; --panel: #f5f7fb; font-family: system-ui, sans-serif; color: var(--fg); }
        * { box-sizing: border-box; }
        body { margin: 0; background: var(--bg); line-height: 1.45; }
        header { background: #14213d; }
        nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: center; padding: .6rem 1rem; max-width: 72rem; margin: auto; }
        nav a { color: #fff; text-decoration: none; padding: .35rem 0; }
        nav a:focus, nav a:hover { text-decoration: underline; }
        .brand { font-weight: 700; margin-right: auto; }
        .signout button { background: transparent; border: 1px solid #fff6; color: #fff; }
        main { max-width: 72rem; margin: auto; padding: 1rem; }
        h1 { font-size: 1.6rem; overflow-wrap: anywhere; }
        table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
        th, td { text-align: left; padding: .45rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        .scroll { overflow-x: auto; }
        .muted { color: var(--muted); font-size: .92em; }
        .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 1rem; margin: 1rem 0; }
        .narrow { max-width: 32rem; }
        label { display: block; font-weight: 600; margin: .6rem 0 .25rem; }
        input, select, textarea { font: inherit; width: 100%; padding: .5rem; border: 1px solid #8a93a6; border-radius: 4px; }
        input[type=checkbox] { width: auto; }
        button, .button { font: inherit; display: inline-block; background: var(--accent); color: #fff; border: 0;
          border-radius: 4px; padding: .55rem 1rem; margin: .6rem .3rem 0 0; cursor: pointer; text-decoration: none; min-height: 2.5rem; }
        .secondary { background: #4d5a73; }
        .danger { background: var(--bad); }
        form.inline { display: inline; }
        .filter label, .filter select { display: inline; width: auto; }
        .error { color: var(--bad); }
        .notice { background: #e7f3ea; border: 1px solid #b9dcc3; padding: .6rem; border-radius: 4px; }
        .field-error { color: var(--bad); margin: .2rem 0 0; }
        .invalid input, .invalid textarea, .invalid select { border-color: var(--bad); }
        .status { font-weight: 600; }
        .succeeded, .emitted { color: var(--good); }
        .failed { color: var(--bad); }
        .running, .retrying { color: var(--warn); }
        pre { background: var(--panel); padding: .6rem; overflow-x: auto; border-radius: 4px; font-size: .85rem; }
        details { border-bottom: 1px solid var(--line); padding: .3rem 0; }
        .diagram img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
        .editor { display: flex; border: 1px solid #8a93a6; border-radius: 4px; }
        .editor textarea { border: 0; font-family: ui-monospace, monospace; font-size: .85rem; line-height: 1.3rem; white-space: pre; }
        .gutter { margin: 0; padding: .5rem .3rem; background: var(--panel); text-align: right; color: var(--muted);
          font-size: .85rem; line-height: 1.3rem; user-select: none; overflow: hidden; border-radius: 0; }
        .gutter .bad { color: #fff; background: var(--bad); }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
        dl.facts dd { margin: 0; overflow-wrap: anywhere; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
        @media (max-width: 40rem) { th, td { padding: .35rem .3rem; font-size: .92rem; } h1 { font-size: 1.3rem; } }
        """

    /// Live run pages (server-sent events, re-rendering `<main>` on each change) and the editor's line links. The
    /// pages work without it: a run page can be reloaded by hand.
    static let javascript = """
        "use strict";
        document.addEventListener("DOMContentLoaded", function () {
          var live = document.body.getAttribute("data-live");
          if (live && window.EventSource) {
            var source = new EventSource(live);
            var refresh = function () {
              fetch(window.location.href, { credentials: "same-origin" }).then(function (response) {
                return response.text();
              }).then(function (html) {
                var page = new DOMParser().parseFromString(html, "text/html");
                var main = page.getElementById("main");
                if (main) { document.getElementById("main").replaceWith(main); }
              });
            };
            source.addEventListener("update", refresh);
            source.addEventListener("end", function () { source.close(); refresh(); });
          }
          var editor = document.getElementById("source");
          document.querySelectorAll("a[data-line]").forEach(function (link) {
            link.addEventListener("click", function (event) {
              event.preventDefault();
              var line = parseInt(link.getAttribute("data-line"), 10);
              var lines = editor.value.split("\\n");
              var start = lines.slice(0, line - 1).join("\\n").length + (line > 1 ? 1 : 0);
              editor.focus();
              editor.setSelectionRange(start, start + (lines[line - 1] || "").length);
            });
          });
          if (editor) {
            var gutter = document.querySelector(".gutter");
            editor.addEventListener("scroll", function () { gutter.scrollTop = editor.scrollTop; });
          }
        });
        """
}
