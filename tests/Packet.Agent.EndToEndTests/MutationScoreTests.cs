using System.Text.Json;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// scripts/mutation/score.py, which turns Stryker's JSON report into the score per file that the
/// README and the mutation notes quote, on a small report written here in Stryker's schema.
/// </summary>
public sealed class MutationScoreTests : IDisposable
{
    private const string Source = "class A\n{\n    int F(int a) => a + 1;\n    object G() { return null; }\n}\n";

    private readonly TempDirectory _dir = new("mutation-score");

    public void Dispose() => _dir.Dispose();

    private static object Mutant(string status, string mutator, int line, int startColumn, int endColumn, string replacement) => new
    {
        id = Guid.NewGuid().ToString(),
        mutatorName = mutator,
        replacement,
        status,
        location = new { start = new { line, column = startColumn }, end = new { line, column = endColumn } },
    };

    private string Report(params object[] mutants)
    {
        string path = _dir["report.json"];
        File.WriteAllText(path, JsonSerializer.Serialize(new
        {
            files = new Dictionary<string, object> { ["/repo/src/Packet.Agent/Boot/A.cs"] = new { source = Source, mutants } },
        }));
        return path;
    }

    private string Equivalents(params string[] lines)
    {
        string path = _dir["equivalent-mutants.md"];
        File.WriteAllText(path, "# Equivalent mutants\n\n" + string.Join('\n', lines) + "\n");
        return path;
    }

    private static ChildResult Score(string report, string equivalents) =>
        ChildProcess.Run("python3", [Path.Join(RepositoryPaths.Root, "scripts/mutation/score.py"), report, equivalents]);

    [Fact]
    public void Killed_and_timed_out_count_against_survived_and_uncovered_and_the_rest_is_left_out()
    {
        string report = Report(
            Mutant("Killed", "Arithmetic mutation", 3, 21, 26, "a - 1"),
            Mutant("Timeout", "Arithmetic mutation", 3, 21, 26, "a * 1"),
            Mutant("Killed", "Arithmetic mutation", 3, 21, 26, "a / 1"),
            Mutant("Survived", "Arithmetic mutation", 3, 21, 26, "a % 1"),
            Mutant("NoCoverage", "Statement mutation", 4, 16, 32, ";"),
            Mutant("Ignored", "String mutation", 3, 21, 26, "\"\""),
            Mutant("CompileError", "Boolean mutation", 3, 21, 26, "true"));

        var result = Score(report, Equivalents());

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Boot/A.cs       3         2           0   60.0%", result.StandardOutput);
        Assert.Contains("all             3         2           0   60.0%", result.StandardOutput);
    }

    [Fact]
    public void A_listed_equivalent_mutant_leaves_the_score_and_only_that_one()
    {
        string report = Report(
            Mutant("Killed", "Arithmetic mutation", 3, 21, 26, "a - 1"),
            Mutant("Survived", "Block removal mutation", 4, 16, 32, "{}"),
            Mutant("Survived", "Arithmetic mutation", 3, 21, 26, "a % 1"));

        var result = Score(report, Equivalents("- `Boot/A.cs` · Block removal mutation · `{ return null; }` → `{}` — returns the same default."));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Boot/A.cs       1         1           1   50.0%", result.StandardOutput);
        Assert.Equal(string.Empty, result.StandardError);
    }

    [Fact]
    public void A_listed_mutant_that_no_longer_survives_is_named()
    {
        string report = Report(Mutant("Killed", "Block removal mutation", 4, 16, 32, "{}"));

        var result = Score(report, Equivalents("- `Boot/A.cs` · Block removal mutation · `{ return null; }` → `{}` — returns the same default."));

        Assert.Contains("lists a mutant that did not survive this run: Boot/A.cs · Block removal mutation · { return null; } → {}", result.StandardError);
    }

    [Fact]
    public void A_malformed_entry_stops_the_score_with_its_line()
    {
        var result = Score(Report(), Equivalents("- `Boot/A.cs` · Block removal mutation — no code given"));

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("equivalent-mutants.md:3: not an entry", result.StandardError);
    }

    [Fact]
    public void Every_entry_of_the_repositorys_list_is_well_formed()
    {
        var result = Score(Report(), Path.Join(RepositoryPaths.Root, "scripts/mutation/equivalent-mutants.md"));

        Assert.True(result.ExitCode == 0, result.ToString());
    }
}
