package proxy

import (
	"strings"

	"github.com/pgrollup/pgrollup/internal/ascii"
)

// What the proxy looks for in a statement's text as it relays it: its first
// keyword, whether it may hold several statements, and which of a few words
// it mentions (a SET of a setting local answers depend on, a COPY, a
// DEALLOCATE...). Each relayed Query or Execute asks several such
// questions; they are answered by one pass over the text, once per
// Statement, so that a prepared statement executed again, or a text the
// statement cache holds, costs field reads rather than scans.

// words is a set of the words the proxy looks for in statements, one bit
// per entry of mentionWords.
type words uint32

const (
	wordCopy words = 1 << iota
	wordBegin
	wordStart
	wordDeallocate
	wordDiscard
	wordClose
	wordReset
	wordExtraFloatDigits
	wordStatementTimeout
	wordSetConfig
	wordListen
	wordDeclare
	wordPrepare
	wordRollback
	wordInto
	wordAnalyze
	wordAnalyse
)

// mentionWords are the words of the bits of words, in order, lower-case.
var mentionWords = [...]string{
	"copy", "begin", "start", "deallocate", "discard", "close", "reset",
	"extra_float_digits", "statement_timeout", "set_config", "listen",
	"declare", "prepare", "rollback", "into", "analyze", "analyse",
}

// mentionMatcher finds mentionWords.
var mentionMatcher = ascii.NewMatcher(mentionWords[:])

// statementText is what one pass over a statement's text finds.
type statementText struct {
	first    string       // firstKeyword
	class    keywordClass // the sets of keywords first is in
	multiple bool         // multipleStatements
	paren    bool         // it holds a parenthesis
	words    words        // the mentionWords it contains, in any case
	// plain: one query (queryKeywords) with no parenthesis that mentions
	// none of mentionWords. Such a statement changes no setting and ends
	// no transaction (settingsNeutralText, endsTransaction), which
	// settingsMayChange then decides for most statements with this one
	// test.
	plain bool
}

func scanText(sql string) statementText {
	first, class := firstKeyword(sql)
	t := statementText{
		first:    first,
		class:    class,
		multiple: multipleStatements(sql),
		paren:    strings.IndexByte(sql, '(') >= 0,
		words:    words(mentionMatcher.Mask(sql)),
	}
	t.plain = t.class&classQuery != 0 && t.class&classTxEnd == 0 && !t.multiple && !t.paren && t.words == 0
	return t
}

// text returns what the statement's text holds, scanning it on first use.
func (st *Statement) text() *statementText {
	if !st.scanned {
		st.scanOnce()
	}
	return &st.txt
}

// scanOnce scans the text of a statement made without it (text).
func (st *Statement) scanOnce() {
	st.textOnce.Do(func() { st.txt = scanText(st.SQL) })
}

// mentions reports whether the statement's text contains any of ws, in any
// case, as ascii.ContainsFold would find it.
func (st *Statement) mentions(ws words) bool { return st.text().words&ws != 0 }

// keywordClass is a set of the keyword sets a first keyword is in, so
// that a statement's text, scanned once, answers for them without a lookup.
type keywordClass uint8

const (
	classQuery keywordClass = 1 << iota // queryKeywords
	classTxEnd                          // txEndKeywords
)

// knownKeyword is one of knownKeywords.
type knownKeyword struct {
	word  string
	class keywordClass
}

// knownKeywords are the first keywords the proxy decides anything by, each
// with itself, so that firstKeyword returns them lower-cased without
// allocating, and with the sets it is in.
var knownKeywords = func() map[string]knownKeyword {
	m := map[string]knownKeyword{}
	for _, set := range []map[string]bool{readOnlyKeywords, parsedKeywords, queryKeywords, txEndKeywords} {
		for kw := range set {
			var class keywordClass
			if queryKeywords[kw] {
				class |= classQuery
			}
			if txEndKeywords[kw] {
				class |= classTxEnd
			}
			m[kw] = knownKeyword{word: kw, class: class}
		}
	}
	for _, kw := range []string{"set", "reset", "discard", "begin", "start", "insert", "update", "delete", "merge", "copy", "call", "do"} {
		if _, ok := m[kw]; !ok {
			m[kw] = knownKeyword{word: kw}
		}
	}
	return m
}()

// lowerKeyword returns word lower-cased, one of knownKeywords without an
// allocation, and the sets of keywords it is in.
func lowerKeyword(word string) (string, keywordClass) {
	var buf [16]byte
	if len(word) > len(buf) {
		return strings.ToLower(word), 0
	}
	for i := 0; i < len(word); i++ {
		buf[i] = ascii.Lower(word[i])
	}
	if string(buf[:len(word)]) == "select" {
		return "select", classQuery // most statements: no map lookup
	}
	if kw, ok := knownKeywords[string(buf[:len(word)])]; ok {
		return kw.word, kw.class
	}
	return strings.ToLower(word), 0
}
