using System.Collections.Concurrent;
using System.Reflection;
using Xunit.Sdk;

namespace Packet.Agent.TestSupport;

/// <summary>
/// Ends the test host when one test runs past <paramref name="seconds"/>, naming the test. Code made
/// wrong on purpose (a mutant that never leaves a loop, a lock that is never free) would otherwise
/// keep its host spinning long after the mutation run gave up on it: dozens of them at once made a
/// run crawl. A test that legitimately takes this long belongs in the end-to-end tests.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = false)]
public sealed class HangWatchdogAttribute(int seconds) : BeforeAfterTestAttribute
{
    // Before and After of one test may run on different threads; a method's cases run one at a time.
    private static readonly ConcurrentDictionary<MethodInfo, Timer> Running = new();

    public override void Before(MethodInfo methodUnderTest)
    {
        string name = $"{methodUnderTest.DeclaringType?.FullName}.{methodUnderTest.Name}";
        var timer = new Timer(_ => Environment.FailFast($"{name} ran past {seconds} s (HangWatchdog): ending the test host so that it does not run on"));
        Running[methodUnderTest] = timer;
        timer.Change(TimeSpan.FromSeconds(seconds), Timeout.InfiniteTimeSpan);
    }

    public override void After(MethodInfo methodUnderTest)
    {
        if (Running.TryRemove(methodUnderTest, out var timer))
        {
            timer.Dispose();
        }
    }
}
