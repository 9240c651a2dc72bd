using System.Reflection;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// A backstop behind <see cref="OptionValues"/>: a bound option whose value is the parser's placeholder
/// <c>__default_command</c> (what Spectre.Console.Cli 0.57 binds to an option given no value) is a usage error
/// naming the option, so no command ever writes to a path of that name.
/// </summary>
/// <param name="next">The interceptor to run after the check, if any.</param>
internal sealed class PlaceholderValues(ICommandInterceptor? next) : ICommandInterceptor
{
    /// <exception cref="ArgumentException">An option holds the placeholder.</exception>
    public void Intercept(CommandContext context, CommandSettings settings)
    {
        foreach (PropertyInfo property in settings.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<CommandOptionAttribute>() is not { } option)
                continue;
            if (property.GetValue(settings) is string value && value == OptionValues.DefaultCommandLiteral)
            {
                string name = option.LongNames.Select(n => "--" + n).FirstOrDefault() ?? "-" + option.ShortNames[0];
                throw new ArgumentException($"{name} needs a value");
            }
        }
        next?.Intercept(context, settings);
    }

    public void InterceptResult(CommandContext context, CommandSettings settings, ref int result) =>
        next?.InterceptResult(context, settings, ref result);
}
