// The defaults of the session seam; see extension.hpp.
#include "smtp/extension.hpp"

namespace maild::smtp {
namespace asio = boost::asio;

asio::awaitable<Verdict> ExtensionSession::on_connect(SessionView&) { co_return Verdict{}; }

asio::awaitable<Verdict> ExtensionSession::on_hello(SessionView&, const Hello&) {
  co_return Verdict{};
}

asio::awaitable<Verdict> ExtensionSession::on_mail(SessionView&, const Mail&) {
  co_return Verdict{};
}

asio::awaitable<Verdict> ExtensionSession::on_rcpt(SessionView&, const Transaction&,
                                                   const RecipientFacts&) {
  co_return Verdict{};
}

asio::awaitable<Verdict> ExtensionSession::on_content(SessionView&, const Transaction&,
                                                      const std::string&) {
  co_return Verdict{};
}

asio::awaitable<Verdict> Extension::on_fetched(const FetchedMessage&) const { co_return Verdict{}; }

asio::awaitable<Flow> ExtensionSession::handle(VerbContext& context, Command&) {
  context.reply(status::unrecognized, "command unrecognized");
  co_return Flow::proceed;
}

}  // namespace maild::smtp
