// The sample texts whose real token counts tests/data/token_samples.json records.
// Varied on purpose: chat turns, prose, code, JSON, numbers, identifiers, many
// scripts, emoji, whitespace-heavy text. Keep names unique and stable.

const loremEnglish = `The committee met on Tuesday to review the quarterly results. Revenue grew in every region except the north-east, where a late shipment pushed two large orders into the next quarter. The chair asked each team to explain its forecast, and the finance lead warned that currency swings could erase most of the gain. After a long discussion, the members agreed to delay the hiring plan until the auditors had signed off on the accounts, and to revisit the question at the next meeting in March.`;

const cppCode = `#include <algorithm>
#include <vector>

namespace demo {

// Returns the k largest values in descending order.
template <typename T>
std::vector<T> topK(std::vector<T> values, std::size_t k) {
  k = std::min(k, values.size());
  std::partial_sort(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end(),
                    [](const T& a, const T& b) { return a > b; });
  values.resize(k);
  return values;
}

}  // namespace demo
`;

const pythonCode = `import json
from dataclasses import dataclass, field


@dataclass
class Invoice:
    number: str
    lines: list[tuple[str, int, float]] = field(default_factory=list)

    def total(self) -> float:
        return sum(qty * price for _, qty, price in self.lines)


def load(path: str) -> list[Invoice]:
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    return [Invoice(r["number"], [tuple(l) for l in r["lines"]]) for r in raw]
`;

const jsCode = `export async function fetchWithRetry(url, { retries = 3, baseMs = 200 } = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(url);
      if (res.status >= 500 && attempt < retries) throw new Error(\`HTTP \${res.status}\`);
      return await res.json();
    } catch (err) {
      if (attempt >= retries) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * baseMs * 2 ** attempt));
    }
  }
}
`;

const sqlCode = `SELECT a.name AS agent, m.model, COUNT(*) AS calls,
       SUM(l.input_tokens) AS input_tokens, SUM(l.cost_micros) / 1e6 AS cost_usd
FROM ledger l
JOIN agents a ON a.id = l.agent_id
JOIN models m ON m.id = l.model_id
WHERE l.created_at >= DATE '2026-01-01' AND l.outcome = 'ok'
GROUP BY a.name, m.model
ORDER BY cost_usd DESC
LIMIT 20;`;

const toolSchema = JSON.stringify([
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the current weather for a city.',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string', description: 'City name, e.g. Paris' },
          unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        },
        required: ['city'],
      },
    },
  },
]);

const prettyJson = JSON.stringify(
  {
    id: 'chatcmpl-9xQv2bA7',
    object: 'chat.completion',
    created: 1767225600,
    model: 'gpt-4o-2024-08-06',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Done.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 79, completion_tokens: 12, total_tokens: 91 },
  },
  null,
  2,
);

const csvNumbers = `date,open,high,low,close,volume
2026-01-02,187.15,188.44,183.89,185.64,82488700
2026-01-03,184.22,185.88,183.43,184.25,58414500
2026-01-04,182.15,183.09,180.88,181.91,71983600
2026-01-05,181.99,182.76,180.17,181.18,62303300`;

const markdown = `## Release checklist

| step | owner | status |
|------|-------|--------|
| Tag the release | @maria | ✅ done |
| Build artifacts | CI | ⏳ running |
| Update **CHANGELOG.md** | @li | ❌ missing |

1. Run \`make test\` and attach the log.
2. Bump the version in \`package.json\`.
   - Use semver: *major* for breaking changes.
> Note: never force-push to \`main\`.`;

const logLines = `2026-03-14T09:26:53.589Z INFO  gateway request_id=req_7f3a91 agent=intent_classifier model=deepseek-v3.2 status=200 latency_ms=412 tokens_in=1834 tokens_out=96
2026-03-14T09:26:53.771Z WARN  breaker provider=relay model=gpt-4.1 state=open failures=5 retry_after_ms=30000
2026-03-14T09:26:54.002Z ERROR upstream connect failed: ECONNREFUSED 127.0.0.1:8443 (attempt 2/3)`;

const systemPrompt = `You are a careful customer-support assistant for an online bookshop.
Rules:
- Answer in the customer's language.
- Never promise a delivery date; say "usually within 3-5 business days".
- If the customer asks for a refund, collect the order number (format BK-123456) and hand off to a human.
- Keep answers under 120 words unless the customer asks for detail.`;

const chinese = `人工智能正在改变软件开发的方式。许多团队开始使用大型语言模型来编写代码、审查合并请求以及生成测试用例。然而，模型的调用成本随着使用量迅速增长，因此需要一个网关来统计每个智能体的令牌消耗，并在预算用完之前发出警告。`;

const japanese = `来週の会議では、新しい料金プランについて説明します。資料は金曜日までに共有してください。質問があれば、いつでもチャットで連絡してください。よろしくお願いします。`;

const korean = `안녕하세요! 오늘 회의는 오후 세 시에 시작합니다. 발표 자료를 미리 확인해 주시고, 질문이 있으면 언제든지 메시지를 보내 주세요. 감사합니다.`;

const russian = `Вчера вечером мы обсуждали план перехода на новую модель. Главная цель — снизить расходы на токены как минимум вдвое, не ухудшив качество ответов. Для этого сначала запустим канареечный режим на десяти процентах трафика.`;

const arabic = `مرحبا بكم في خدمة العملاء. يرجى تزويدنا برقم الطلب حتى نتمكن من مساعدتكم في أسرع وقت ممكن. شكرا لتفهمكم وصبركم.`;

const hindi = `नमस्ते! कृपया अपना ऑर्डर नंबर भेजें ताकि हम आपकी जल्दी से जल्दी मदद कर सकें। धन्यवाद।`;

const thai = `สวัสดีครับ วันนี้อากาศดีมาก เราจะไปเที่ยวทะเลกันตอนบ่าย อย่าลืมเอาครีมกันแดดมาด้วยนะครับ`;

const greekUpper = `ΣΗΜΑΝΤΙΚΗ ΕΝΗΜΕΡΩΣΗ: Η ΣΥΝΤΗΡΗΣΗ ΤΟΥ ΣΥΣΤΗΜΑΤΟΣ ΘΑ ΓΙΝΕΙ ΤΗΝ ΚΥΡΙΑΚΗ.`;

const german = `Sehr geehrte Damen und Herren, hiermit kündige ich meinen Vertrag fristgerecht zum nächstmöglichen Zeitpunkt. Bitte bestätigen Sie mir die Kündigung schriftlich und teilen Sie mir das genaue Vertragsende mit. Mit freundlichen Grüßen, Jürgen Müller`;

const polish = `Dzień dobry! Chciałbym zamówić dwie pizze z dostawą na ulicę Żeromskiego 15. Czy można zapłacić kartą przy odbiorze? Z góry dziękuję za szybką odpowiedź.`;

const vietnamese = `Xin chào! Tôi muốn đặt một bàn cho bốn người vào tối thứ Bảy lúc bảy giờ. Nhà hàng có món chay không? Cảm ơn bạn rất nhiều.`;

const emojiChat = `omg that's amazing 🎉🎉🎉 congrats!! 😂👍 see you at the party 🥳🍕🍻 can't wait ❤️❤️`;

const emojiHeavy = `👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 🇯🇵 🇧🇷 👩🏽‍💻 🧑🏿‍🚀 🫶🏻 🪐 🦄 🧋 🫠 ✨🔥💯`;

const mixedCjkEnglish = `请帮我review一下这个PR：修复了rate limiter在高并发下的race condition，另外把timeout从30s改成了60s。Thanks!`;

const codeWithJapaneseComments = `def 合計(values):
    # 値のリストを受け取り、合計を返す
    total = 0
    for v in values:  # 各要素を加算
        total += v
    return total`;

const identifiers = `getUserAccountBalanceByIdAsync, HTTPServerConfigurationManager, snake_case_variable_name, __init__, kMaxRetryAttempts, XMLHttpRequest, isNaN, parseInt`;

const hexAndIds = `sha256: 446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d
uuid: 3f2b8c1e-9d4a-4f7b-8e2c-1a6d5b9c0e7f
req: req_01HZX9T7Q4M2N8K5J3P6R0V1W9`;

const base64Blob = `aGVsbG8gd29ybGQsIHRoaXMgaXMgYSBiYXNlNjQgZW5jb2RlZCBibG9iIHRoYXQgYSB1c2VyIHBhc3RlZCBpbnRvIGEgcHJvbXB0IGJ5IG1pc3Rha2UuIEl0IHNob3VsZCBub3QgYnJlYWsgdGhlIGVzdGltYXRvci4=`;

const urls = `See https://docs.example.com/api/v2/chat/completions?model=gpt-4o&stream=true#usage and https://github.com/example-org/sluice/pull/1234/files for details.`;

const numbersProse = `In 2025 the company shipped 1,234,567 units at an average price of $19.99, up 3.5% from 2024; Q4 alone accounted for 412,890 units and $8,253,671.10 in revenue.`;

const mathNumbers = `3.14159265358979323846 2.71828182845904523536 1.41421356237309504880 0.57721566490153286060 1.61803398874989484820`;

const intList = `[17, 4, 93, 256, 1024, 7, 65535, 42, 3, 88, 999, 12345, 0, -1, 31337, 2026, 8, 64, 128, 4096]`;

const phoneDates = `Call +1 (415) 555-0132 or +44 20 7946 0958 before 12/31/2026 23:59 UTC; ref #A-2026-0042.`;

const htmlSnippet = `<div class="card"><h2 id="title">Order #4521</h2><p>Status: <span class="badge badge-success">shipped</span></p><a href="/orders/4521?tab=tracking">Track package</a></div>`;

const shellScript = `#!/usr/bin/env bash
set -euo pipefail
for f in "$@"; do
  if [[ -f "$f" ]]; then
    sha256sum "$f" | awk '{print $1}' >> checksums.txt
  else
    echo "skip: $f" >&2
  fi
done`;

const yamlConfig = `profiles:
  migrated:
    substitutions: {gpt-4.1: {to: deepseek-v3.2, percent: 100}}
    fallbacks:     {deepseek-v3.2: [gemini-2.5-flash, gpt-4.1]}
resilience:
  retries: {max: 2, base_ms: 100, max_ms: 2000}`;

const indentedCode = `                if (value) {
                        if (other) {
                                return compute(value,
                                               other,
                                               options);
                        }
                }`;

const blankLines = `first paragraph


second paragraph after blank lines



third
	tabbed line
		double tabbed`;

const allCaps = `WARNING: DO NOT OPERATE THIS EQUIPMENT WITHOUT PROPER TRAINING. UNAUTHORIZED USE IS STRICTLY PROHIBITED AND WILL BE REPORTED.`;

const rareWords = `Pneumonoultramicroscopicsilicovolcanoconiosis, floccinaucinihilipilification, antidisestablishmentarianism and Llanfairpwllgwyngyllgogerychwyndrobwllllantysiliogogogoch.`;

const names = `Attendees: Krzysztof Wróblewski, Siobhán Ní Bhriain, Nguyễn Thị Minh Khai, Oluwaseun Adebayo-Okonkwo, Þórdís Kolbrún Reykfjörð Gylfadóttir, Zbigniew Brzęczyszczykiewicz.`;

const longEnglish = Array.from({ length: 8 }, () => loremEnglish).join('\n\n');

const longCode = Array.from({ length: 6 }, () => cppCode).join('\n');

export const samples = [
  { name: 'chat_hi', text: 'Hi' },
  { name: 'chat_ok', text: 'ok' },
  { name: 'chat_thanks', text: 'Thanks!' },
  { name: 'chat_question', text: "What's the weather like in Paris today?" },
  { name: 'chat_followup', text: 'Can you make it shorter and add a bullet list of the three main points?' },
  { name: 'chat_typo', text: 'plz fix teh bug in my cod, its not wrking when i clik the buton' },
  { name: 'english_prose', text: loremEnglish },
  { name: 'english_long', text: longEnglish },
  { name: 'system_prompt', text: systemPrompt },
  { name: 'all_caps', text: allCaps },
  { name: 'rare_words', text: rareWords },
  { name: 'names', text: names },
  { name: 'markdown_table', text: markdown },
  { name: 'code_cpp', text: cppCode },
  { name: 'code_cpp_long', text: longCode },
  { name: 'code_python', text: pythonCode },
  { name: 'code_js', text: jsCode },
  { name: 'code_sql', text: sqlCode },
  { name: 'code_shell', text: shellScript },
  { name: 'code_html', text: htmlSnippet },
  { name: 'code_indented', text: indentedCode },
  { name: 'yaml_config', text: yamlConfig },
  { name: 'json_tools', text: toolSchema },
  { name: 'json_pretty', text: prettyJson },
  { name: 'identifiers', text: identifiers },
  { name: 'hex_ids', text: hexAndIds },
  { name: 'base64_blob', text: base64Blob },
  { name: 'urls', text: urls },
  { name: 'log_lines', text: logLines },
  { name: 'numbers_prose', text: numbersProse },
  { name: 'numbers_math', text: mathNumbers },
  { name: 'numbers_list', text: intList },
  { name: 'numbers_csv', text: csvNumbers },
  { name: 'phone_dates', text: phoneDates },
  { name: 'whitespace_blank_lines', text: blankLines },
  { name: 'chinese', text: chinese },
  { name: 'japanese', text: japanese },
  { name: 'korean', text: korean },
  { name: 'russian', text: russian },
  { name: 'greek_upper', text: greekUpper },
  { name: 'arabic', text: arabic },
  { name: 'hindi', text: hindi },
  { name: 'thai', text: thai },
  { name: 'german', text: german },
  { name: 'polish', text: polish },
  { name: 'vietnamese', text: vietnamese },
  { name: 'emoji_chat', text: emojiChat },
  { name: 'emoji_heavy', text: emojiHeavy },
  { name: 'mixed_cjk_english', text: mixedCjkEnglish },
  { name: 'code_japanese_comments', text: codeWithJapaneseComments },
];
