import FedloginCore
import Testing

struct TimeLeftTests {
    @Test func underAMinuteIsSaidInSeconds() {
        #expect(TimeLeft.text(seconds: 59.9) == "59 seconds")
        #expect(TimeLeft.text(seconds: 10) == "10 seconds")
        #expect(TimeLeft.text(seconds: 1.5) == "1 second")
        #expect(TimeLeft.text(seconds: 0) == "0 seconds")
    }

    @Test func fromAMinuteOnItIsRoundedToWholeMinutes() {
        #expect(TimeLeft.text(seconds: 60) == "1 minute")
        #expect(TimeLeft.text(seconds: 89) == "1 minute")
        #expect(TimeLeft.text(seconds: 90) == "2 minutes")
        #expect(TimeLeft.text(seconds: 119.4) == "2 minutes")
        #expect(TimeLeft.text(seconds: 120) == "2 minutes")
        #expect(TimeLeft.text(seconds: 149) == "2 minutes")
        #expect(TimeLeft.text(seconds: 600) == "10 minutes")
    }

    @Test func aDeadlinePassedOrNonFiniteIsZeroSeconds() {
        #expect(TimeLeft.text(until: 100, now: 130) == "0 seconds")
        #expect(TimeLeft.text(seconds: .nan) == "0 seconds")
        #expect(TimeLeft.text(seconds: -.infinity) == "0 seconds")
        #expect(TimeLeft.text(until: 1119.5, now: 1000) == "2 minutes")
    }
}

struct TriesLeftTests {
    @Test func aRefusedChoiceSaysTheTriesLeft() {
        #expect(PasscodePolicy.choiceTries == 3)
        #expect(PasscodePolicy.triesLeftText(2) == " 2 tries left.")
        #expect(PasscodePolicy.triesLeftText(1) == " 1 try left.")
        #expect(PasscodePolicy.triesLeftText(0) == "")
    }
}
