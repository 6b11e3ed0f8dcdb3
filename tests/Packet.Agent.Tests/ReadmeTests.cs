using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Commands;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.Tests;

/// <summary>
/// README.md is the front door: its options table is generated from the option declarations (as
/// --help is), its step list is the sequence's, its links lead somewhere, and it stays short.
/// </summary>
public sealed partial class ReadmeTests
{
    private const string TableStart = "<!-- options: generated from OptionTable, do not edit by hand -->\n";
    private const string TableEnd = "<!-- options: end -->\n";

    private static string ReadmePath => Path.Join(RepositoryPaths.Root, "README.md");

    /// <summary>The options table as OptionTable declares it: flag, variable, default, meaning, and the commands that take it.</summary>
    public static string OptionsTable()
    {
        var table = new StringBuilder("| flag | environment | default | meaning | commands |\n|---|---|---|---|---|\n");
        foreach (var option in OptionTable.All)
        {
            string flag = option.Flag is null ? string.Empty : Code(option.IsSwitch ? option.Flag : $"{option.Flag} {option.ValueName}");
            string variable = option.VariableInHelp is null ? string.Empty : Code(option.VariableInHelp);
            table.Append(CultureInfo.InvariantCulture, $"| {flag} | {variable} | {option.DefaultInHelp} | {option.Help} | {HelpText.Commands(option.Commands)} |\n");
        }

        return table.ToString();
    }

    [Fact]
    public void The_options_table_is_the_one_the_option_declarations_generate()
    {
        string readme = File.ReadAllText(ReadmePath);
        int start = readme.IndexOf(TableStart, StringComparison.Ordinal);
        int end = readme.IndexOf(TableEnd, StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, $"README.md has no options table between '{TableStart.Trim()}' and '{TableEnd.Trim()}'");
        string generated = readme[..(start + TableStart.Length)] + OptionsTable() + readme[end..];
        if (Environment.GetEnvironmentVariable("PACKET_WRITE_README") == "1")
        {
            File.WriteAllText(ReadmePath, generated);
            return;
        }

        Assert.True(generated == readme, "README.md's options table differs from OptionTable; regenerate it: PACKET_WRITE_README=1 dotnet test tests/Packet.Agent.Tests --filter ReadmeTests");
    }

    [Fact]
    public void The_step_list_is_the_boot_sequence_by_name_and_number()
    {
        var listed = StepLine().Matches(File.ReadAllText(ReadmePath))
            .Select(m => new StepId(m.Groups[2].Value, int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)));

        Assert.Equal(StepId.Sequence, listed);
    }

    [Fact]
    public void It_stays_a_front_door_and_every_link_it_gives_leads_to_a_file()
    {
        string readme = File.ReadAllText(ReadmePath);

        Assert.True(readme.Split('\n').Length < 200, "README.md is the front door, under 200 lines: the reference goes to docs/");
        var links = LocalLink().Matches(readme).Select(m => m.Groups[1].Value).ToList();
        Assert.Contains("docs/architecture.md", links);
        Assert.All(links, link => Assert.True(Path.Exists(Path.Join(RepositoryPaths.Root, link)), $"README.md links to {link}, which does not exist"));
    }

    private static string Code(string text) => $"`{text}`";

    [GeneratedRegex(@"^(\d)\. \*\*(\w+)\*\*", RegexOptions.Multiline)]
    private static partial Regex StepLine();

    // Relative links, without their #anchor.
    [GeneratedRegex(@"\]\((?!https?:|#)([^)#]+)(?:#[^)]*)?\)")]
    private static partial Regex LocalLink();
}
