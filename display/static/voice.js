/* Announcements: "Mời công dân có số A023 đến quầy số 5", said after a chime.

   The number is read as people say it, "A, hai mươi ba", not digit by digit: the leading
   zeros only pad the printed label, and a Vietnamese listener waiting for 23 listens for
   "hai mươi ba" (the way hospitals and banks here call numbers). Counters likewise:
   "quầy số mười hai".

   With a browser Vietnamese voice (speechSynthesis, vi-VN) the sentence is spoken; without
   one, short clips from /board/voice/ (see manifest.json and tools/make_voice_clips.py) are
   played one after another. Announcements wait in a queue so that two never overlap. */
(function (global) {
  "use strict";

  var DIGITS = ["khong", "mot", "hai", "ba", "bon", "nam", "sau", "bay", "tam", "chin"];

  // Clip keys for 0–99.
  function belowHundred(n) {
    var tens = Math.floor(n / 10), units = n % 10, keys = [];
    if (tens === 0) return [DIGITS[units]];
    if (tens === 1) keys.push("muoi");
    else keys.push(DIGITS[tens], "muoi-tens");
    if (units === 0) return keys;
    if (units === 5) keys.push("lam");
    else if (units === 1 && tens > 1) keys.push("mot-units");
    else if (units === 4 && tens > 1) keys.push("tu-units");
    else keys.push(DIGITS[units]);
    return keys;
  }

  // Clip keys for 0–999; `inside` when a higher part was said ("một nghìn không trăm…").
  function belowThousand(n, inside) {
    var hundreds = Math.floor(n / 100), rest = n % 100, keys = [];
    if (hundreds === 0 && !inside) return belowHundred(rest);
    keys.push(DIGITS[hundreds], "tram");
    if (rest === 0) return keys;
    if (rest < 10) return keys.concat(["linh", DIGITS[rest]]);
    return keys.concat(belowHundred(rest));
  }

  function numberKeys(n) {
    if (!(n >= 0) || n > 9999) return String(n).split("").map(function (d) { return DIGITS[+d]; });
    if (n < 1000) return belowThousand(n, false);
    var keys = [DIGITS[Math.floor(n / 1000)], "nghin"], rest = n % 1000;
    return rest ? keys.concat(belowThousand(rest, true)) : keys;
  }

  // "A023", 5 → the clip keys of the whole sentence.
  function sentence(label, counter) {
    var match = /^([A-Za-z]*)(\d*)$/.exec(String(label).trim()), keys = ["moi-cong-dan-co-so"];
    var letters = match ? match[1] : "", digits = match ? match[2] : String(label);
    letters.toUpperCase().split("").forEach(function (letter) {
      if (letter) keys.push("letter-" + letter.toLowerCase());
    });
    if (digits) keys = keys.concat(numberKeys(parseInt(digits, 10)));
    keys.push("den-quay-so");
    return keys.concat(numberKeys(parseInt(counter, 10)));
  }

  function vietnameseVoice() {
    if (!global.speechSynthesis || !global.SpeechSynthesisUtterance) return null;
    var voices = global.speechSynthesis.getVoices() || [];
    for (var i = 0; i < voices.length; i++) {
      if (String(voices[i].lang).replace("_", "-").toLowerCase().indexOf("vi") === 0) return voices[i];
    }
    return null;
  }

  function VoiceLine(manifestUrl) {
    this.base = manifestUrl.replace(/[^/]*$/, "");
    this.manifest = null;
    this.jobs = [];
    this.busy = false;
    this.enabled = false;
    this.spoken = [];  // what was announced, newest last (for tests and the live region)
    var self = this;
    if (global.fetch) {
      global.fetch(manifestUrl).then(function (r) { return r.json(); })
        .then(function (m) { self.manifest = m; }, function () {});
    }
  }

  VoiceLine.prototype.text = function (keys) {
    var clips = (this.manifest && this.manifest.clips) || {};
    return keys.map(function (key) { return clips[key] ? clips[key].text : key; }).join(" ");
  };

  // Queue one announcement; it plays after those already waiting.
  VoiceLine.prototype.announce = function (label, counter) {
    var keys = sentence(label, counter);
    this.spoken.push(keys.join(" "));
    if (!this.enabled) return;
    this.jobs.push(keys);
    this.next();
  };

  VoiceLine.prototype.next = function () {
    if (this.busy || !this.jobs.length) return;
    var self = this, keys = this.jobs.shift();
    this.busy = true;
    function done() { self.busy = false; global.setTimeout(function () { self.next(); }, 400); }
    this.play(this.manifest ? this.manifest.chime : "chime.mp3").then(function () {
      var voice = vietnameseVoice();
      return voice ? self.speak(self.text(keys), voice) : self.clips(keys);
    }).then(done, done);
  };

  VoiceLine.prototype.play = function (file) {
    var audio = new global.Audio(this.base + file);
    return new Promise(function (resolve) {
      audio.addEventListener("ended", resolve);
      audio.addEventListener("error", resolve);
      // Never hang the queue on a clip that stalls.
      global.setTimeout(resolve, 8000);
      var started = audio.play();
      if (started && started.catch) started.catch(resolve);
    });
  };

  VoiceLine.prototype.clips = function (keys) {
    var self = this, clips = (this.manifest && this.manifest.clips) || {};
    return keys.reduce(function (chain, key) {
      return chain.then(function () { return clips[key] ? self.play(clips[key].file) : null; });
    }, Promise.resolve());
  };

  VoiceLine.prototype.speak = function (text, voice) {
    return new Promise(function (resolve) {
      var utterance = new global.SpeechSynthesisUtterance(text);
      utterance.voice = voice;
      utterance.lang = "vi-VN";
      utterance.rate = 0.9;
      utterance.onend = resolve;
      utterance.onerror = resolve;
      global.setTimeout(resolve, 15000);
      global.speechSynthesis.speak(utterance);
    });
  };

  global.XephangVoice = { VoiceLine: VoiceLine, sentence: sentence, numberKeys: numberKeys };
})(window);
