using System.Globalization;
using MoeSharp.Cli.Verification;
using MoeSharp.Collectives;
using MoeSharp.Tensors;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe verify-golden FILE...</c>: replays each golden file (dispatch kind bitwise, moe_layer kind within tolerance plus
/// multi-rank layouts bitwise) and prints PASS, FAIL (with the first mismatch:
/// tensor, index, expected, actual) or N/A per file. Exit code 0 only when no file failed; 2 when a file could
/// not be read.
/// </summary>
internal sealed class VerifyGoldenCommand : Command<VerifyGoldenSettings>
{
    public override int Execute(CommandContext context, VerifyGoldenSettings settings, CancellationToken cancellationToken)
    {
        TimeSpan? timeout = settings.TimeoutSeconds is double s ? TimeSpan.FromSeconds(s) : null;
        int passed = 0, failed = 0, notApplicable = 0, unreadable = 0;
        foreach (string path in settings.Files)
        {
            string name = Path.GetFileName(path);
            SafetensorsContent file;
            try
            {
                file = SafetensorsFile.Read(path);
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                AnsiConsole.MarkupLine($"[red]FAIL[/] {Markup.Escape(name)}: cannot read: {Markup.Escape(ex.Message)}");
                unreadable++;
                continue;
            }

            if (GoldenLayerReplay.Applies(file))
            {
                string? layerMismatch;
                GoldenLayerReplay.Report? report = null;
                try
                {
                    report = GoldenLayerReplay.Replay(file, timeout);
                    layerMismatch = report.Mismatch;
                }
                catch (Exception ex) when (ex is InvalidDataException or KeyNotFoundException or ArgumentException or RankFailedException)
                {
                    layerMismatch = $"cannot replay: {ex.Message}";
                }
                string detail = report is null ? "" : string.Create(CultureInfo.InvariantCulture,
                    $" max relative error {report.MaxRelativeError:E2} ({report.WorstTensor}); {report.Layouts} multi-rank layouts bitwise (out, grad.x), weight grads {(report.WeightGradsBitwise ? "bitwise" : "within 1e-5")}");
                if (layerMismatch is null)
                {
                    AnsiConsole.MarkupLine($"[green]PASS[/] {Markup.Escape(name)}:{Markup.Escape(detail)}");
                    passed++;
                }
                else
                {
                    AnsiConsole.MarkupLine($"[red]FAIL[/] {Markup.Escape(name)}: {Markup.Escape(layerMismatch)}{Markup.Escape(detail)}");
                    failed++;
                }
                continue;
            }

            if (!GoldenDispatchReplay.Applies(file))
            {
                string kind = file.Metadata.TryGetValue("kind", out string? k) ? k : "?";
                AnsiConsole.MarkupLine($"[grey]N/A [/] {Markup.Escape(name)}: kind '{Markup.Escape(kind)}' is not a known golden kind");
                notApplicable++;
                continue;
            }

            string? mismatch;
            try
            {
                mismatch = GoldenDispatchReplay.Replay(file, timeout);
            }
            catch (Exception ex) when (ex is InvalidDataException or KeyNotFoundException or ArgumentException or RankFailedException)
            {
                mismatch = $"cannot replay: {ex.Message}";
            }
            if (mismatch is null)
            {
                AnsiConsole.MarkupLine($"[green]PASS[/] {Markup.Escape(name)}");
                passed++;
            }
            else
            {
                AnsiConsole.MarkupLine($"[red]FAIL[/] {Markup.Escape(name)}: {Markup.Escape(mismatch)}");
                failed++;
            }
        }
        AnsiConsole.MarkupLine($"{passed} passed, {failed + unreadable} failed, {notApplicable} not applicable");
        return unreadable > 0 ? CliApp.UsageError : failed > 0 ? 1 : 0;
    }
}
